"""Bad input gets one line naming the fix, a non-zero exit, and the store keeps what it held; the store never corrupts."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from sdd_test_helpers import error_line, invoke

from sdd_tui.core.engine.training import Trainer
from sdd_tui.core.events import RunStarted
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import CHECKPOINT
from sdd_tui.headless import hangup_safe

QUICK = ["train.epochs=1", "prune.rounds=2", "runtime.checkpoint_every=0", "runtime.checkpoint_minutes=0"]


@pytest.fixture(scope="module")
def finished_home(tmp_path_factory) -> Path:
    """A store holding one finished QUICK smoke run."""
    home = tmp_path_factory.mktemp("finished")
    result = invoke("--preset", "smoke", *sets(QUICK), "--home", str(home))
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def home(finished_home, tmp_path) -> Path:
    path = tmp_path / "home"
    shutil.copytree(finished_home, path)
    return path


def sets(overrides) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def run(home: Path, *args: str):
    return invoke("--preset", "smoke", "--home", str(home), *args)


def store_bytes(home: Path) -> bytes:
    return (home / "store.json").read_bytes()


def records(home: Path) -> dict[str, dict]:
    return {r["id"]: r for r in Store(home).list_runs()}


# ---------------------------------------------------------------------------- input that never starts a run


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--preset", "nosuch"], "unknown preset 'nosuch'; choose one of: "),
        (["--config", "/nonexistent/run.toml"], "config file /nonexistent/run.toml not found; check the path"),
        (["--preset", "smoke", "--set", "train.nosuch=1"], "unknown field 'nosuch' in section 'train'; allowed: epochs"),
        (["--preset", "smoke", "--set", "train.lr=1e6"], "train.lr: Input should be less than or equal to 10"),
        (["--preset", "smoke", "--set", "nosuch.lr=1"], "unknown section 'nosuch'; sections: "),
        (["--preset", "smoke", "--set", "data.name=mnist", "--set", "data.data_dir=/nonexistent/data"],
         "mnist not found under /nonexistent/data; set data.data_dir to where it is, or --set data.download=true"),
    ],
    ids=["unknown-preset", "missing-config", "unknown-field", "out-of-range", "unknown-section", "missing-data-dir"],
)
def test_bad_input_is_one_line_exit_2_and_store_untouched(home, args, expected):
    before = store_bytes(home)
    result = invoke(*args, "--home", str(home))
    assert result.exit_code == 2
    assert expected in error_line(result)
    assert "Traceback" not in result.output
    assert store_bytes(home) == before


def test_malformed_toml_names_the_file(home, tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text("name = 'x'\n[train\nepochs = 2\n", encoding="utf-8")
    before = store_bytes(home)
    result = invoke("--config", str(config), "--home", str(home))
    assert result.exit_code == 2
    assert f"{config}: malformed TOML" in error_line(result)
    assert store_bytes(home) == before


def test_unreadable_data_dir(home, monkeypatch, tmp_path):
    import torchvision

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(torchvision.datasets, "MNIST", refuse)
    before = store_bytes(home)
    result = run(home, *sets(["data.name=mnist", f"data.data_dir={json.dumps(str(tmp_path))}"]))
    assert result.exit_code == 2
    assert f"cannot read mnist under {tmp_path} (Permission denied); check data.data_dir" in error_line(result)
    assert store_bytes(home) == before


def test_cuda_without_a_gpu(home, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = store_bytes(home)
    result = run(home, "--device", "cuda")
    assert result.exit_code == 2
    assert "no CUDA GPU is visible; use --device cpu" in error_line(result)
    assert store_bytes(home) == before


# ---------------------------------------------------------------------------- failures inside a run


def fail_in_round(monkeypatch, round_index: int, action) -> None:
    original = Trainer.train

    def train(self, *args, **kwargs):
        if self.round_index == round_index:
            action(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train", train)


def new_record(home: Path, before: dict[str, dict]) -> dict:
    after = records(home)
    assert {k: v for k, v in after.items() if k in before} == before  # earlier runs untouched
    (new_id,) = set(after) - set(before)
    return after[new_id]


def test_gpu_out_of_memory_suggests_a_smaller_batch_and_keeps_rounds(home, monkeypatch):
    def out_of_memory(trainer):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    fail_in_round(monkeypatch, 1, out_of_memory)
    before = records(home)
    result = run(home, *sets(QUICK))
    assert result.exit_code == 2
    line = error_line(result)
    assert "GPU out of memory in round 1 (train.batch_size=64)" in line
    assert "--set train.batch_size=32" in line
    record = new_record(home, before)
    assert record["status"] == "failed"
    assert [r["round"] for r in record["rounds"]] == [0]


def test_nan_loss_fails_the_run_naming_round_and_epoch(home, monkeypatch):
    def poison(trainer):
        with torch.no_grad():
            for parameter in trainer.model.parameters():
                parameter.fill_(float("nan"))

    fail_in_round(monkeypatch, 1, poison)
    before = records(home)
    result = run(home, *sets(QUICK))
    assert result.exit_code == 2
    assert "loss became nan in round 1, epoch 1; lower train.lr" in error_line(result)
    record = new_record(home, before)
    assert record["status"] == "failed"
    assert "round 1, epoch 1" in record["error"]
    assert [r["round"] for r in record["rounds"]] == [0]


def test_full_disk_keeps_the_previous_checkpoint_and_resume_finishes(home, monkeypatch):
    real_save = torch.save
    seen = {"saves": 0}

    def save(obj, handle, *args, **kwargs):
        seen["saves"] += "partial" in obj  # checkpoints, not the per-round weight files
        if seen["saves"] == 2:  # round 1's checkpoint: half written, then the disk is full
            handle.write(b"partial bytes")
            (checkpoint,) = [p for p in home.glob(f"runs/*/{CHECKPOINT}") if p.parent.name not in before]
            seen["previous"] = checkpoint.read_bytes()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    before = records(home)
    result = run(home, *sets(QUICK))
    monkeypatch.setattr(torch, "save", real_save)

    assert result.exit_code == 2
    line = error_line(result)
    assert "checkpoint of round 1 not written" in line and "(the disk is full)" in line
    assert "the previous checkpoint is intact; free space there, then `sdd-tui resume" in line
    record = new_record(home, before)
    assert record["status"] == "failed"
    run_dir = home / "runs" / record["id"]
    assert (run_dir / CHECKPOINT).read_bytes() == seen["previous"]
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*.tmp"))
    assert torch.load(run_dir / CHECKPOINT, weights_only=False)["round"] == 0

    resumed = invoke("resume", record["id"], "--home", str(home))
    assert resumed.exit_code == 0, resumed.output
    (finished,) = before.values()
    assert [r["test_acc"] for r in records(home)[record["id"]]["rounds"]] == [r["test_acc"] for r in finished["rounds"]]


# ---------------------------------------------------------------------------- resume and delete refusals


def add_record(home: Path, run_id: str, status: str, pid: int | None) -> None:
    import socket

    Store(home).create_run({"id": run_id, "name": "x", "config": {}, "status": status, "pid": pid,
                            "host": socket.gethostname(), "started": 0.0, "rounds": []})


def test_resume_refuses_unknown_finished_and_live_runs(home):
    (finished_id,) = records(home)
    add_record(home, "live-run", "running", os.getpid())
    before = store_bytes(home)
    cases = [
        ("nosuch", "no run 'nosuch'; `sdd-tui runs` lists the runs"),
        (finished_id, f"run {finished_id} is finished; nothing to resume"),
        ("live-run", f"run live-run is still running (pid {os.getpid()} on"),
    ]
    for run_id, expected in cases:
        result = invoke("resume", run_id, "--home", str(home))
        assert result.exit_code == 2, result.output
        assert expected in error_line(result)
        assert store_bytes(home) == before


def test_delete_refuses_a_running_run(home):
    add_record(home, "live-run", "running", os.getpid())
    Store(home).run_dir("live-run").mkdir(parents=True, exist_ok=True)
    before = store_bytes(home)
    result = invoke("runs", "delete", "live-run", "--yes", "--home", str(home))
    assert result.exit_code == 2
    assert "run live-run is running; stop it first" in error_line(result)
    assert store_bytes(home) == before
    assert Store(home).run_dir("live-run").is_dir()


def test_resume_that_cannot_start_leaves_the_record_as_it_was(home, monkeypatch):
    (run_id,) = records(home)
    Store(home).update_run(run_id, status="stopped")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    record = records(home)[run_id]
    record["config"]["runtime"]["device"] = "cuda"
    Store(home).update_run(run_id, config=record["config"])
    before = store_bytes(home)
    result = invoke("resume", run_id, "--home", str(home))
    assert result.exit_code == 2
    assert "no CUDA GPU is visible" in error_line(result)
    assert store_bytes(home) == before


# ---------------------------------------------------------------------------- the store


WRITER = textwrap.dedent("""
    import sys
    from sdd_tui.core.history.store import Store
    store = Store(sys.argv[1])
    for i in range(200):
        store.create_run({"id": f"{sys.argv[2]}-{i}", "name": "x", "config": {}, "status": "finished",
                          "started": float(i), "rounds": []})
""")


@pytest.mark.slow
def test_two_processes_writing_200_records_each_lose_none(tmp_path):
    writers = [subprocess.Popen([sys.executable, "-P", "-c", WRITER, str(tmp_path), tag], cwd=tmp_path,
                                stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    ids = {r["id"] for r in Store(tmp_path).list_runs()}
    assert ids == {f"{tag}-{i}" for tag in ("a", "b") for i in range(200)}


def test_corrupt_store_is_reported_left_untouched_and_repaired_by_doctor(home):
    rounds_before = next(iter(records(home).values()))["rounds"]
    store_file = home / "store.json"
    corrupt = store_file.read_bytes()[:-40]  # a write cut short
    store_file.write_bytes(corrupt)

    listing = invoke("runs", "--home", str(home))
    assert listing.exit_code == 2
    line = error_line(listing)
    assert f"store {store_file} is corrupt" in line and "run `sdd-tui doctor`" in line
    starting = run(home, *sets(QUICK))  # a new run must not overwrite it either
    assert starting.exit_code == 2 and "is corrupt" in error_line(starting)
    assert store_file.read_bytes() == corrupt
    (copy,) = home.glob("store.json.corrupt-*")
    assert copy.read_bytes() == corrupt

    report = invoke("doctor", "--home", str(home))
    assert report.exit_code == 1
    assert "does not parse" in report.output and "`sdd-tui doctor --repair`" in report.output
    assert f"corrupt copy {copy.name}" in report.output
    assert store_file.read_bytes() == corrupt

    repaired = invoke("doctor", "--repair", "--home", str(home))
    assert "repaired: re-added run" in repaired.output
    (record,) = records(home).values()
    assert record["status"] == "finished" and record["rounds"] == rounds_before
    assert copy.read_bytes() == corrupt  # the corrupt bytes are still kept


def test_doctor_lists_interrupted_runs_orphans_and_leftovers(home):
    (run_id,) = records(home)
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
    add_record(home, "killed-run", "running", int(dead_pid))
    orphan = home / "runs" / "orphan-run"
    orphan.mkdir()
    (orphan / "events.jsonl").write_text(RunStarted(run_id="orphan-run", time=1.0, name="o", preset=None, config={},
                                                    device="cpu", rounds=1, epochs=1).to_json() + "\n")
    leftover = home / "runs" / run_id / ".checkpoint.pt.abcd.tmp"
    leftover.write_bytes(b"half")

    report = invoke("doctor", "--home", str(home))
    assert report.exit_code == 1
    lines = report.output.splitlines()
    assert any("run killed-run was interrupted" in l and "`sdd-tui resume killed-run`" in l for l in lines)
    assert any(f"orphan folder {orphan}" in l and "--repair" in l for l in lines)
    assert any(f"leftover temporary file {leftover}" in l for l in lines)

    invoke("doctor", "--repair", "--home", str(home))
    assert not leftover.exists()
    assert records(home)["orphan-run"]["status"] == "running"  # no RunEnded: shows as interrupted


def test_a_sink_whose_terminal_is_gone_falls_silent():
    calls = []

    def reporter(event):
        calls.append(event)
        raise OSError(errno.EIO, "Input/output error")

    sink = hangup_safe(reporter)
    sink("first")
    sink("second")
    assert calls == ["first"]
