"""Your own dataset as `module.path:function`: what it is handed, what is done to what it returns, and the
one-line errors of a bad plugin. The module lives in the working directory, as a user's would."""

import hashlib
import re
import sys
from pathlib import Path

import pytest
import torch

from sdd_tui.core.config import DataConfig, NoiseConfig, resolve_config, validate_config
from sdd_tui.core.data.datasets import iterate_batches, load_dataset
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import Store
from sdd_tui.core.plugins import plugin_provenance

VECTORS = """
    import torch

    def load(data):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(300, 5, generator=generator) * data.scale + 7.0
        y = torch.arange(300) % 3
        return x[:200], y[:200], x[200:], y[200:]
"""


def data_config(module: str, function: str = "load", **extra) -> DataConfig:
    return validate_config({"data": {"name": f"{module}:{function}", **extra}}).data


def test_plugin_gets_its_section_and_its_data_is_noised_and_standardised(plugin_module, tmp_path):
    name = plugin_module(VECTORS)
    data = load_dataset(data_config(name, scale=3.0), NoiseConfig(kind="symmetric", rate=0.2), tmp_path, seed=0)
    assert data.num_classes == 3  # the largest label + 1
    assert int(data.noisy_mask.sum()) == 40 and torch.equal(data.noisy_mask, data.y_train != data.y_train_clean)
    assert torch.allclose(data.x_train.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(data.x_train.std(0), torch.ones(5), atol=1e-5)
    raw = load_dataset(data_config(name, scale=3.0, normalize=False), NoiseConfig(kind="none"), tmp_path, seed=0)
    assert 2.0 < float(raw.x_train.std()) < 4.0  # data.scale reached the function; nothing standardised


def test_plugin_uint8_images_are_scaled_then_standardised_per_channel_and_augmented(plugin_module, tmp_path):
    name = plugin_module("""
        import torch

        def images(data):
            x = torch.zeros(40, 2, 6, 6, dtype=torch.uint8)
            x[:, 0] = torch.arange(40, dtype=torch.uint8)[:, None, None]
            x[:, 1] = 200
            x[:, 1, :, :3] = 100
            y = torch.arange(40) % 4
            return x[:30], y[:30], x[30:], y[30:]
    """)
    data = load_dataset(data_config(name, "images"), NoiseConfig(kind="none"), tmp_path, seed=0)
    assert data.is_image and data.input_shape == (2, 6, 6) and data.x_train.dtype == torch.float32
    assert torch.allclose(data.x_train.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(data.x_train.std(dim=(0, 2, 3)), torch.ones(2), atol=1e-5)
    plain = next(iterate_batches(data.x_train, data.y_train, 30, torch.Generator().manual_seed(0)))[0]
    shifted = next(iterate_batches(data.x_train, data.y_train, 30, torch.Generator().manual_seed(0), augment=True))[0]
    assert not torch.equal(plain, shifted)  # train.augment shifts and flips plugin images too


def test_train_size_subsets_plugin_data(plugin_module, tmp_path):
    name = plugin_module(VECTORS)
    data = load_dataset(data_config(name, scale=1.0, train_size=50), NoiseConfig(kind="none"), tmp_path, seed=0)
    assert len(data.y_train) == 50 and len(data.y_test) == 100


BAD_RETURNS = [
    ("return x, y, x", "returned a tuple of 3"),
    ("return x.numpy(), y.numpy(), x.numpy(), y.numpy()", "as torch tensors"),
    ("return x.view(10, 2, 2), y, x.view(10, 2, 2), y", "N x D (vectors) or N x C x H x W"),
    ("return x, y[:5], x, y", "one label per sample"),
    ("return x, y.float(), x, y", "integer class indices"),
    ("return x, y - 1, x, y", "labels out of range"),
    ("return x, y, x, y + 5", "labels out of range: y_test has"),
    ("return x, y, x[:, :2], y", "same shape"),
    ("return x, y * 0, x, y * 0", "at least 2 classes"),
]


@pytest.mark.parametrize("body, fragment", BAD_RETURNS)
def test_bad_dataset_returns_are_one_line_errors(plugin_module, tmp_path, body, fragment):
    name = plugin_module(f"""
        import torch

        def load(data):
            x, y = torch.randn(10, 4), torch.arange(10) % 2
            {body}
    """)
    with pytest.raises(SddError, match=re.escape(fragment)) as error:
        load_dataset(data_config(name), NoiseConfig(kind="none"), tmp_path, seed=0)
    assert "\n" not in str(error.value) and name in str(error.value)


def test_missing_module_and_function_name_the_fix(plugin_module, tmp_path):
    with pytest.raises(SddError, match="no module 'no_such_plugin' in the working directory.*PYTHONPATH"):
        load_dataset(data_config("no_such_plugin"), NoiseConfig(kind="none"), tmp_path, seed=0)
    with pytest.raises(SddError, match="no module 'no_such_package.data'"):
        load_dataset(data_config("no_such_package.data"), NoiseConfig(kind="none"), tmp_path, seed=0)
    name = plugin_module(VECTORS)
    with pytest.raises(SddError, match=f"{name}.py has no function 'lod'; define it there or fix the name"):
        load_dataset(data_config(name, "lod"), NoiseConfig(kind="none"), tmp_path, seed=0)


def test_import_errors_inside_a_plugin_are_not_swallowed(plugin_module, tmp_path):
    third_party = plugin_module("import no_such_library_xyz\n\ndef load(data):\n    pass\n")
    with pytest.raises(ModuleNotFoundError, match="no_such_library_xyz"):
        load_dataset(data_config(third_party), NoiseConfig(kind="none"), tmp_path, seed=0)
    ours = plugin_module("from sdd_tui.core import no_such_module_of_ours\n\ndef load(data):\n    pass\n")
    with pytest.raises(ImportError, match="no_such_module_of_ours"):
        load_dataset(data_config(ours), NoiseConfig(kind="none"), tmp_path, seed=0)


def test_provenance_names_module_function_file_and_hash(plugin_module, tmp_path):
    name = plugin_module(VECTORS)
    config = validate_config({"data": {"name": f"{name}:load", "scale": 1.0}})
    record = plugin_provenance(config)
    file = tmp_path / f"{name}.py"
    assert record == {"data.plugin_module": name, "data.plugin_function": "load",
                      "data.plugin_file": str(file.resolve()),
                      "data.plugin_sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    assert plugin_provenance(validate_config({})) == {}


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
def test_example_plugin_runs_and_its_run_records_the_plugins(run_experiment, home, monkeypatch):
    monkeypatch.chdir(EXAMPLES)  # as its docstring says: run from the examples folder
    monkeypatch.setattr(sys, "path", list(sys.path))
    config = resolve_config(config_file=EXAMPLES / "digits-cnn.toml",
                            overrides=["train.epochs=1", "prune.rounds=1", "model.channels=4", "train.augment=true"])
    run_id, status, _ = run_experiment(config, home)
    assert status == "finished"
    record = Store(home).get_run(run_id)
    plugins = record["provenance"]["plugins"]
    assert plugins["data.plugin_function"] == "digits_images" and plugins["model.plugin_function"] == "small_cnn"
    file = EXAMPLES / "digits_cnn.py"
    assert plugins["model.plugin_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert record["config"]["data"]["test_fraction"] == 0.33 and record["config"]["model"]["channels"] == 4
    first = record["rounds"][0]
    assert first["total"] == 4 * 9 + 8 * 4 * 9 + 8 * 4 * 64  # conv1, conv2, fc: prunable() leaves out the output
    assert 0.19 < record["rounds"][1]["sparsity"] < 0.21
