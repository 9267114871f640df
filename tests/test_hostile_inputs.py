"""Inputs a hostile or careless user gives (issue 23): damaged dataset files and caches, special files in
Tiny ImageNet, huge ranges, plugins that return the wrong things, a full stdout, shell-quoted sweep
origins, and the modes of the files sdd-tui makes. Each is one line (or a cache made again), never a
traceback, and nothing stored is lost."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.config import DataConfig
from sdd_tui.core.data import datasets as data_module
from sdd_tui.core.data.datasets import load_clean
from sdd_tui.core.errors import SddError

# ---------------------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray, shape: tuple[int, ...] | None = None) -> bytes:
    """MNIST's IDX format: magic (0, 0, 0x08 = uint8, ndim), big-endian int32 sizes (`shape`, default the
    array's: a header may claim more than it holds), the bytes."""
    shape = shape or array.shape
    header = struct.pack(">BBBB", 0, 0, 0x08, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
    return header + array.astype(np.uint8).tobytes()


IDX_FILES = {("train", "images"): "train-images-idx3-ubyte", ("train", "labels"): "train-labels-idx1-ubyte",
             ("test", "images"): "t10k-images-idx3-ubyte", ("test", "labels"): "t10k-labels-idx1-ubyte"}


def write_fashion_raw(data_dir: Path) -> Path:
    """Torchvision's unpacked Fashion-MNIST layout with 20 train and 10 test images of 6 x 6; the raw folder."""
    raw = data_dir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", 20), ("test", 10)):
        (raw / IDX_FILES[(split, "images")]).write_bytes(idx_bytes(rng.integers(0, 256, (count, 6, 6))))
        (raw / IDX_FILES[(split, "labels")]).write_bytes(idx_bytes(np.arange(count) % 10))
    return raw


def one_line_error(result) -> str:
    """The `error: ...` line of a CLI result that failed as a user error should: exit 2, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len([line for line in lines if line.startswith("error: ")]) == 1, result.output
    assert "Traceback" not in result.output
    return next(line for line in lines if line.startswith("error: "))


# ---------------------------------------------------------------------------- Fashion-MNIST's raw files

DAMAGES = {
    "truncated": lambda good: good[: len(good) // 2],
    "garbage": lambda good: os.urandom(len(good)),
    "empty": lambda good: b"",
    "label of 200": None,  # written below: a labels file whose third label is 200
    "header of 10^9 images": lambda good: idx_bytes(np.zeros((20, 6, 6)), shape=(10**9, 6, 6)),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_fashion_mnist_file_is_named_with_how_to_unpack_it_again(tmp_path, monkeypatch, damage):
    system = tmp_path / "system-fashion-mnist"  # Debian's archives are there: the fix is to unpack again
    system.mkdir()
    for archive in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                    "t10k-labels-idx1-ubyte.gz"):
        (system / archive).write_bytes(b"")
    monkeypatch.setattr(data_module, "FASHION_MNIST_SYSTEM_DIR", system)
    home = tmp_path / "home"
    raw = write_fashion_raw(home / "data")
    if damage == "label of 200":
        target = raw / IDX_FILES[("train", "labels")]
        target.write_bytes(idx_bytes(np.array([1, 2, 200] + [3] * 17)))
    else:
        target = raw / IDX_FILES[("train", "images")]
        target.write_bytes(DAMAGES[damage](target.read_bytes()))
    with pytest.raises(SddError) as raised:
        load_clean(DataConfig(name="fashion_mnist"), home)
    message = str(raised.value)
    assert str(target) in message and "\n" not in message
    assert f"unpacked again from {system}" in message and "delete it" in message


def test_a_damaged_mnist_file_in_data_dir_names_the_download(tmp_path):
    raw = write_fashion_raw(tmp_path / "elsewhere")
    target = raw / IDX_FILES[("test", "labels")]
    target.write_bytes(target.read_bytes()[:5])
    with pytest.raises(SddError, match=f"{target} is damaged.*data.download=true"):
        load_clean(DataConfig(name="fashion_mnist", data_dir=tmp_path / "elsewhere"), tmp_path / "home")


def test_whole_fashion_mnist_files_still_load_through_torchvision(tmp_path):
    write_fashion_raw(tmp_path / "d")
    x_train, y_train, x_test, y_test = load_clean(DataConfig(name="fashion_mnist", data_dir=tmp_path / "d"), tmp_path)
    assert x_train.shape == (20, 1, 6, 6) and y_test.tolist() == list(range(10))


# ---------------------------------------------------------------------------- the MNIST-1D cache




def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as arrays:
        return {key: arrays[key] for key in arrays.files}


def _rewrite(path: Path, change) -> None:
    arrays = change(_arrays(path))
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


CACHE_DAMAGES = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:300]),
    "empty": lambda path: path.write_bytes(b""),
    "missing key": lambda path: _rewrite(path, lambda arrays: {k: v for k, v in arrays.items() if k != "y"}),
    "labels out of range": lambda path: _rewrite(path, lambda arrays: arrays | {"y_test": np.full(40, 12)}),
}


@pytest.mark.parametrize("damage", list(CACHE_DAMAGES))
def test_a_damaged_mnist1d_cache_is_made_again_with_a_line_saying_so(tmp_path, small_mnist1d, capfd, damage):
    first = load_clean(DataConfig(name="mnist1d"), tmp_path)
    (cache,) = (tmp_path / "data" / "mnist1d").glob("*.npz")
    CACHE_DAMAGES[damage](cache)
    again = load_clean(DataConfig(name="mnist1d"), tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # made again: the same data
    said = capfd.readouterr().err.splitlines()
    assert [line for line in said if str(cache) in line and "making it again" in line] and len(said) == 1
    assert load_clean(DataConfig(name="mnist1d"), tmp_path)[1].max() <= 9 and capfd.readouterr().err == ""


# ---------------------------------------------------------------------------- Tiny ImageNet


@pytest.fixture
def tiny(tmp_path) -> Path:
    from tests.test_tiny_imagenet import write_tiny_imagenet

    return write_tiny_imagenet(tmp_path / "datasets", per_class=3, val_per_class=1) / "tiny-imagenet-200"


def load_tiny(root: Path, stop=None):
    from sdd_tui.core.data.tiny_imagenet import load_tiny_imagenet

    return load_tiny_imagenet(root.parent, stop)


def test_a_fifo_named_like_an_image_is_skipped_in_train_and_named_in_val(tiny):
    os.mkfifo(tiny / "train" / "n001" / "images" / "x.JPEG")  # opening it would wait for a writer for good
    (tiny / "train" / "n001" / "images" / "folder.JPEG").mkdir()
    x_train, y_train, *_ = load_tiny(tiny)
    assert len(y_train) == 9  # the 3 x 3 real images only
    os.mkfifo(tiny / "val" / "images" / "fifo.JPEG")
    with open(tiny / "val" / "val_annotations.txt", "a", encoding="utf-8") as annotations:
        annotations.write("fifo.JPEG\tn001\t0\t0\t16\t16\n")
    with pytest.raises(SddError, match=r"val_annotations.txt line 4: .*fifo.JPEG is not a regular file; put the image"):
        load_tiny(tiny)


def test_a_png_header_of_30000_by_30000_is_named_not_a_decompression_bomb_error(tiny):
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = tiny / "train" / "n002" / "images" / "n002_1.JPEG"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    with pytest.raises(SddError, match=rf"{bomb} claims more pixels .*replace or remove it"):
        load_tiny(tiny)
    from PIL import Image  # under Pillow's limit, over ours: named before a byte is decoded

    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    assert Image.open(bomb).size == (9000, 9000)
    with pytest.raises(SddError, match=rf"{bomb} claims 9000x9000 pixels.*replace or remove it"):
        load_tiny(tiny)


@pytest.mark.parametrize("listing", ["wnids.txt", "val/val_annotations.txt"])
def test_a_listing_that_is_not_utf8_is_named(tiny, listing):
    (tiny / listing).write_bytes(b"n001\n\xff\xfe\x80n002\n")
    with pytest.raises(SddError, match=rf"{tiny / listing} is not UTF-8 text .*unzip tiny-imagenet-200 again"):
        load_tiny(tiny)


@pytest.mark.parametrize("odd", ["n001/images/n001_0.JPEG", "n003/images/n003_2.JPEG"])
def test_the_one_odd_sized_image_is_named_even_when_it_comes_first(tiny, odd):
    Image = pytest.importorskip("PIL.Image")
    Image.new("RGB", (20, 12), (9, 9, 9)).save(tiny / "train" / odd, format="JPEG")
    with pytest.raises(SddError) as raised:
        load_tiny(tiny)
    assert f"image {tiny / 'train' / odd} is 20x12, not 16x16" in str(raised.value)


def test_a_stop_ends_a_read_that_never_returns(tiny, monkeypatch):
    import threading
    import time

    from PIL import Image

    from sdd_tui.core.errors import StopRequested

    stuck = threading.Event()
    monkeypatch.setattr(Image, "open", lambda *a, **k: (stuck.set(), threading.Event().wait())[1])
    stop = threading.Event()
    threading.Thread(target=lambda: (stuck.wait(30), stop.set()), daemon=True).start()
    started = time.monotonic()
    with pytest.raises(StopRequested):
        load_tiny(tiny, stop)
    assert time.monotonic() - started < 30


STUCK_RUN = """
import sys, threading
from pathlib import Path
import PIL.Image
marker = Path(sys.argv[1])
def stuck(*args, **kwargs):
    marker.write_text("reading")
    threading.Event().wait()
PIL.Image.open = stuck
sys.argv = ["sdd-tui", "--preset", "smoke", "--home", sys.argv[2], "--set", "data.name=tiny_imagenet",
            "--set", "data.data_dir=" + sys.argv[3]]
from sdd_tui.cli import main
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_run_whose_data_read_never_returns(tiny, tmp_path, signum):
    import signal
    import time

    marker = tmp_path / "reading"
    process = subprocess.Popen([sys.executable, "-P", "-c", STUCK_RUN, str(marker), str(tmp_path / "home"),
                                str(tiny.parent)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run never started reading images: {process.communicate()[0]}")
        time.sleep(0.05)
    process.send_signal(getattr(signal, signum))
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{signum} did not stop the run")
    assert process.returncode == 130, output
    assert "Traceback" not in output


# ---------------------------------------------------------------------------- plugins

PLUGIN_MODELS = """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width, classes):
            super().__init__()
            self.fc = nn.Linear(width, classes)

        def forward(self, x):
            return self.fc(x)

    class NoneNames(Net):
        def prunable(self):
            return None

    class BatchOfTwo(Net):
        def forward(self, x):
            return self.fc(x.view(2, -1))

    def none_names(config, input_shape, num_classes):
        return NoneNames(input_shape[0], num_classes)

    def frozen(config, input_shape, num_classes):
        model = Net(input_shape[0], num_classes)
        model.requires_grad_(False)
        return model

    def batch_of_two(config, input_shape, num_classes):
        return BatchOfTwo(input_shape[0], num_classes)

    def exits(config, input_shape, num_classes):
        raise SystemExit("bye")
"""

PLUGIN_DATA = """
    import torch

    def _parts():
        x, y = torch.randn(40, 4, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 2
        return x, y, x[:10].clone(), y[:10]

    def nan_test():
        x, y, x_test, y_test = _parts()
        x_test[3, 1] = float("nan")
        return x, y, x_test, y_test

    def inf_train():
        x, y, x_test, y_test = _parts()
        x[0, 0] = float("inf")
        return x, y, x_test, y_test

    def huge_label():
        x, y, x_test, y_test = _parts()
        y[5] = 10**12
        return x, y, x_test, y_test

    def grad():
        x, y, x_test, y_test = _parts()
        return x.requires_grad_(), y, x_test, y_test

    def meta():
        x, y, x_test, y_test = _parts()
        return x, y, x_test.to("meta"), y_test

    def load(data, kind="nan_test"):
        return globals()[data.kind]()
"""


@pytest.mark.parametrize("kind, fragment", [
    ("nan_test", "x_test holds 1 NaN or infinite value(s)"),
    ("inf_train", "x_train holds 1 NaN or infinite value(s)"),
    ("huge_label", "the largest training label is 1,000,000,000,000 but there are 40 training samples"),
    ("grad", "x_train requires grad; return data, not part of a graph"),
    ("meta", "x_test is on the meta device"),
])
def test_plugin_data_that_would_train_wrong_or_ask_for_terabytes_is_one_line(plugin_module, tmp_path, kind, fragment):
    from sdd_tui.core.config import NoiseConfig, validate_config
    from sdd_tui.core.data.datasets import load_dataset

    name = plugin_module(PLUGIN_DATA)
    config = validate_config({"data": {"name": f"{name}:load", "kind": kind}}).data
    with pytest.raises(SddError) as raised:
        load_dataset(config, NoiseConfig(kind="none"), tmp_path, seed=0)
    assert fragment in str(raised.value) and name in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("function, fragment", [
    ("none_names", "NoneNames.prunable() returned a NoneType; return a list of parameter names"),
    ("frozen", "has every parameter frozen (requires_grad=False)"),
    ("batch_of_two", "fails on a batch of 3 samples of shape [16]"),
    ("exits", "called sys.exit('bye'); return the model instead"),
])
def test_plugin_models_that_cannot_train_are_one_line_and_printed_once(plugin_module, tmp_path, function, fragment):
    name = plugin_module(PLUGIN_MODELS)
    result = CliRunner().invoke(app, ["--preset", "smoke", "--home", str(tmp_path / "home"),
                                      "--set", f"model.name={name}:{function}"])
    line = one_line_error(result)
    assert fragment in line
    assert result.output.count(fragment) == 1  # not once as the run's message and again as the command's error


@pytest.mark.parametrize("spec", ["os:getcwd", "builtins:exec", "sys:exit"])
def test_a_function_of_python_itself_is_not_a_dataset_function(tmp_path, spec):
    result = CliRunner().invoke(app, ["--preset", "smoke", "--home", str(tmp_path / "home"),
                                      "--set", f"data.name={spec}"])
    line = one_line_error(result)
    assert f"data.name={spec!r} is builtin_function_or_method" in line and "name your own function" in line
    assert "normalize=" not in result.output  # sys.exit(config) no longer prints the config


def test_a_dataset_function_with_the_wrong_arguments_is_named(plugin_module, tmp_path):
    name = plugin_module("def load():\n    return None\n")
    result = CliRunner().invoke(app, ["--preset", "smoke", "--home", str(tmp_path / "home"),
                                      "--set", f"data.name={name}:load"])
    assert "takes (); sdd-tui calls it with (data)" in one_line_error(result)


# ---------------------------------------------------------------------------- ranges past any round


@pytest.fixture(scope="module")
def finished_home(tmp_path_factory) -> tuple[Path, str]:
    """A home with one finished smoke run (3 pruning rounds): (home, run id)."""
    from sdd_tui.core.config import resolve_config
    from sdd_tui.core.runs.launch import build_run

    home = tmp_path_factory.mktemp("finished") / "home"
    run = build_run(resolve_config("smoke"), home)
    assert run.run() == "finished"
    return home, run.run_id


def test_branch_rounds_up_to_a_trillion_is_one_line_naming_the_bound(finished_home):
    home, run_id = finished_home
    before = (home / "runs" / run_id / "rounds.json").read_bytes()
    line = one_line_error(CliRunner().invoke(app, ["branch", run_id, "reinit", "--rounds", "1-1000000000000",
                                                   "--home", str(home)]))
    assert "--rounds '1-1000000000000': 1,000,000,000,000 is past 200, the last round a run can have" in line
    assert "give numbers 0-200" in line
    assert (home / "runs" / run_id / "rounds.json").read_bytes() == before


def test_sweep_levels_up_to_a_trillion_is_one_line_naming_prune_rounds(tmp_path):
    line = one_line_error(CliRunner().invoke(app, [
        "sweep", "--preset", "smoke", "--set", "prune.schedule=oneshot", "--levels", "1-1000000000000",
        "--dry-run", "--home", str(tmp_path / "home")]))
    assert "--levels '1-1000000000000': 1,000,000,000,000 is past 3, the last pruning round (prune.rounds)" in line


def test_ranges_are_bounded_even_without_a_known_last_number():
    from sdd_tui.core.ranges import LARGEST, parse_ranges

    with pytest.raises(SddError, match=f"past {LARGEST:,}"):
        parse_ranges("5-99999999999999999999", "--x")
    assert parse_ranges("3,1-2,2", "--x", high=3) == [1, 2, 3]


# ---------------------------------------------------------------------------- a full stdout


@pytest.mark.parametrize("command", [["runs", "--json"], ["runs", "show", "RUN", "--json"], ["runs", "show", "RUN"],
                                     ["presets"], ["--help"]])
def test_output_to_a_full_stdout_is_one_line_on_stderr_and_exit_2(finished_home, command):
    if not Path("/dev/full").exists():
        pytest.skip("this system has no /dev/full")
    home, run_id = finished_home
    argv = [a.replace("RUN", run_id) for a in command] + (["--home", str(home)] if command[0] == "runs" else [])
    with open("/dev/full", "w") as full:
        ended = subprocess.run([sys.executable, "-P", "-m", "sdd_tui", *argv], stdout=full, stderr=subprocess.PIPE,
                               text=True, timeout=120)
    assert ended.returncode == 2, ended.stderr
    assert ended.stderr.splitlines() == [
        "error: cannot write the output (No space left on device); is the disk it goes to full? send it elsewhere"]


# ---------------------------------------------------------------------------- the sweep's origin, pasted


def test_the_sweep_origin_pasted_into_a_shell_runs_exactly_that_command(tmp_path):
    from sdd_tui.core.history.records import SweepRecord
    from sdd_tui.core.sweeps.sweep import origin_command, origin_text

    sweep = SweepRecord.parse({"id": "sw-1", "preset": "smoke", "overrides": ["name=it's a \"test\"; rm -rf ~", "runtime.note=$(touch pwned) `x`"],
             "grid": {"noise.rate": ["0.2", "0.4"], "name": ["a b", "*"]}, "seeds": [0, 1], "levels": [1, 2]})
    text = origin_text(sweep)
    assert text.startswith("from sdd-tui sweep --preset smoke --set ")
    command = text.removeprefix("from ")
    shell = subprocess.run(["bash", "-c", "printf '%s\\0' " + command.removeprefix("sdd-tui")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=30)
    assert shell.stdout.split("\0")[:-1] == origin_command(sweep)[1:]
    assert origin_command(sweep)[-4:] == ["--seeds", "0,1", "--levels", "1,2"]
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------------- a home shared by a group


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_every_file_sdd_tui_makes_follows_the_umask(tmp_path, umask):
    from sdd_tui.core.config import resolve_config
    from sdd_tui.core.runs.launch import build_run

    previous = os.umask(umask)
    try:
        home = tmp_path / "home"
        run = build_run(resolve_config("smoke"), home)
        assert run.run() == "finished"
    finally:
        os.umask(previous)
    folder = home / "runs" / run.run_id
    modes = {str(path.relative_to(home)): oct(path.stat().st_mode & 0o777)
             for path in home.rglob("*") if path.is_file()}
    named = {"store.json", "store.lock", f"runs/{run.run_id}/run.json", f"runs/{run.run_id}/rounds.json",
             f"runs/{run.run_id}/events.jsonl", f"runs/{run.run_id}/run.lock", f"runs/{run.run_id}/rounds/round-1.pt"}
    assert named <= set(modes), sorted(modes)
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes
    folders = {path.name: oct(path.stat().st_mode & 0o777) for path in (home / "runs", folder, folder / "rounds")}
    assert set(folders.values()) == {oct(0o777 & ~umask)}, folders
