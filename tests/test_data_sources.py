"""Real files through torchvision's own reading code: small IDX files in MNIST's format, written here
(no committed data); Debian's Fashion-MNIST folder stood in for by a temporary one; MNIST-1D generated
by its own package, never downloaded."""

import gzip
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from sdd_tui.core.config import DataConfig
from sdd_tui.core.data import datasets as data_module
from sdd_tui.core.data.datasets import load_clean
from sdd_tui.core.errors import SddError

FILES = {("train", "images"): "train-images-idx3-ubyte", ("train", "labels"): "train-labels-idx1-ubyte",
         ("test", "images"): "t10k-images-idx3-ubyte", ("test", "labels"): "t10k-labels-idx1-ubyte"}


def idx_bytes(array: np.ndarray) -> bytes:
    """MNIST's IDX format: magic (0, 0, 0x08 = uint8, ndim), big-endian int32 sizes, the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def small_split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 6, 6)), np.arange(count) % 10


def write_idx_folder(folder: Path, compress: bool = False) -> dict[str, np.ndarray]:
    """Four IDX files (20 train, 10 test images of 6 x 6) in `folder`; returns what they hold."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, count, seed in (("train", 20, 0), ("test", 10, 1)):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = small_split(count, seed)
        for kind in ("images", "labels"):
            content = idx_bytes(arrays[f"{split}_{kind}"])
            name = FILES[(split, kind)]
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(content))
            else:
                (folder / name).write_bytes(content)
    return arrays


def assert_loaded(loaded, arrays) -> None:
    x_train, y_train, x_test, y_test = loaded
    assert x_train.shape == (20, 1, 6, 6) and x_test.shape == (10, 1, 6, 6)
    assert torch.equal(y_train, torch.as_tensor(arrays["train_labels"])) and y_test.dtype == torch.long
    expected = torch.as_tensor(arrays["train_images"], dtype=torch.float32) / 255
    expected = (expected - expected.mean()) / expected.std()
    assert torch.allclose(x_train[:, 0], expected, atol=1e-5)  # normalised with the training statistics


@pytest.fixture
def no_system_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system-copy")


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_idx_files_in_data_dir_are_read_by_torchvision(tmp_path, no_system_copy, name, folder):
    arrays = write_idx_folder(tmp_path / "datasets" / folder / "raw")
    loaded = load_clean(DataConfig(name=name, data_dir=tmp_path / "datasets"), tmp_path / "home")
    assert_loaded(loaded, arrays)


def test_fashion_mnist_falls_back_to_the_system_folder_without_downloading(tmp_path, monkeypatch):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    arrays = write_idx_folder(system, compress=True)
    monkeypatch.setattr(data_module, "FASHION_MNIST_SYSTEM_DIR", system)
    monkeypatch.setattr("torchvision.datasets.utils.download_url", lambda *a, **k: pytest.fail("downloaded"))
    home = tmp_path / "home"
    assert_loaded(load_clean(DataConfig(name="fashion_mnist"), home), arrays)
    raw = home / "data" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(FILES.values())  # unpacked once, nothing else left
    for path in system.iterdir():
        path.unlink()  # the unpacked copy is enough from now on
    assert_loaded(load_clean(DataConfig(name="fashion_mnist"), home), arrays)


def test_fashion_mnist_with_data_dir_never_uses_the_system_folder(tmp_path, monkeypatch):
    system = tmp_path / "system"
    write_idx_folder(system, compress=True)
    monkeypatch.setattr(data_module, "FASHION_MNIST_SYSTEM_DIR", system)
    with pytest.raises(SddError, match="fashion_mnist not found under .*elsewhere.*data.download=true"):
        load_clean(DataConfig(name="fashion_mnist", data_dir=tmp_path / "elsewhere"), tmp_path / "home")


def test_fashion_mnist_missing_everywhere_names_the_fix(tmp_path, no_system_copy):
    with pytest.raises(SddError, match="fashion_mnist not found.*data.download=true"):
        load_clean(DataConfig(name="fashion_mnist"), tmp_path / "home")




def test_mnist1d_is_generated_once_cached_and_leaves_global_rngs_alone(tmp_path, small_mnist1d, monkeypatch):
    random.seed(5)
    np.random.seed(5)
    before = random.random(), np.random.random()
    random.seed(5)
    np.random.seed(5)
    x_train, y_train, x_test, y_test = load_clean(DataConfig(name="mnist1d"), tmp_path)
    assert (random.random(), np.random.random()) == before  # make_dataset's set_seed(42) undone
    assert x_train.shape == (160, 40) and x_test.shape == (40, 40)  # its 80 / 20 split of 40-value sequences
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.long and set(y_train.tolist()) <= set(range(10))
    cached = list((tmp_path / "data" / "mnist1d").iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".npz"
    monkeypatch.setattr(small_mnist1d, "make_dataset", lambda *a, **k: pytest.fail("generated twice"))
    again = load_clean(DataConfig(name="mnist1d"), tmp_path)
    assert torch.equal(again[0], x_train) and torch.equal(again[3], y_test)
