import re
from pathlib import Path

import pytest

from sdd_tui.core.config import (
    ExperimentConfig,
    apply_overrides,
    config_to_toml,
    load_preset,
    parse_override,
    preset_names,
    resolve_config,
    validate_config,
)
from sdd_tui.core.errors import SddError

PAPER_PRESETS = {"resnet18-noise20", "resnet18-cifar100-noise20", "vgg16-noise20", "lenet300-noise20",
                 "digits-noise40", "smoke", "lenet300-fashion-noise20", "lenet300-fashion-cpu",
                 "mlp-mnist1d-noise30"}


def test_every_preset_loads_and_has_a_description():
    assert PAPER_PRESETS <= set(preset_names())
    for name in preset_names():
        config = load_preset(name)
        assert config.name == name
        assert config.description


def test_paper_settings_of_the_resnet101_tiny_imagenet_preset():
    config = load_preset("resnet101-tinyimagenet-noise20")
    assert (config.data.name, config.model.name) == ("tiny_imagenet", "resnet101")
    assert (config.train.epochs, config.train.batch_size, config.train.lr) == (200, 512, 0.2)
    assert config.train.milestones == [100, 150] and config.train.gamma == 0.1 and config.train.momentum == 0.9
    assert config.train.weight_decay == 1e-4 and config.train.augment and not config.data.download
    assert config.retrain.mode == "rewind" and config.retrain.rewind_iteration == 1000
    assert config.prune.schedule == "oneshot" and config.prune.fraction == 0.2 and config.prune.rounds == 16
    assert config.noise.kind == "symmetric" and config.noise.rate == 0.2


def test_paper_settings_of_resnet18_preset():
    config = load_preset("resnet18-noise20")
    assert (config.data.name, config.model.name) == ("cifar10", "resnet18")
    assert (config.train.epochs, config.train.batch_size, config.train.lr) == (160, 128, 0.1)
    assert config.train.milestones == [80, 120] and config.train.momentum == 0.9
    assert config.train.weight_decay == 1e-4 and config.train.augment
    assert config.retrain.rewind_iteration == 1000 and config.prune.rounds == 30
    assert config.noise.kind == "symmetric" and config.noise.rate == 0.2


def test_overrides_apply_typed_values():
    config = resolve_config("smoke", overrides=["train.epochs=5", "data.name=digits", "train.milestones=[2, 4]",
                                                "noise.rate=0.4", "train.augment=true"])
    assert config.train.epochs == 5
    assert config.data.name == "digits"
    assert config.train.milestones == [2, 4]
    assert config.noise.rate == 0.4 and config.train.augment is True


def test_override_parsing_reads_toml_values_and_bare_words():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a.b=cifar10") == (["a", "b"], "cifar10")
    assert parse_override("a.b = 1e-4") == (["a", "b"], 1e-4)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.epochs=0", "train.epochs"),
        ("noise.rate=1.5", "noise.rate"),
        ("data.name=imagenet", "data.name"),
        ("prune.fraction=1", "prune.fraction"),
        ("runtime.device=gpu", "runtime.device"),
        ("train.foo=1", "unknown field 'foo'"),
        ("nosuch.field=1", "unknown section"),
        ("data.name.x=1", "unknown field"),
        ("train.epochs", "expected section.field=value"),
    ],
)
def test_bad_override_is_one_line_error_naming_the_field(override, fragment):
    with pytest.raises(SddError) as error:
        resolve_config("smoke", overrides=[override])
    message = str(error.value)
    assert fragment in message
    assert "\n" not in message


def test_unknown_preset_lists_presets():
    with pytest.raises(SddError, match="choose one of: .*smoke"):
        resolve_config("no-such-preset")


def test_config_file_and_malformed_toml(tmp_path: Path):
    good = tmp_path / "mine.toml"
    good.write_text('name = "mine"\n[train]\nepochs = 3\n')
    assert resolve_config(config_file=good).train.epochs == 3
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3\n")
    with pytest.raises(SddError, match="malformed TOML"):
        resolve_config(config_file=bad)
    with pytest.raises(SddError, match="not found"):
        resolve_config(config_file=tmp_path / "missing.toml")
    with pytest.raises(SddError, match="either --preset or --config"):
        resolve_config("smoke", good)


def test_unknown_field_in_file_is_named(tmp_path: Path):
    path = tmp_path / "typo.toml"
    path.write_text("[train]\nepoch = 3\n")
    with pytest.raises(SddError, match=r"train\.epoch: unknown field; allowed: epochs"):
        resolve_config(config_file=path)


def test_toml_rendering_round_trips(tmp_path: Path):
    config = load_preset("resnet18-noise20")
    path = tmp_path / "again.toml"
    path.write_text(config_to_toml(config))
    assert resolve_config(config_file=path) == config


def test_apply_overrides_does_not_mutate_input():
    raw = {"train": {"epochs": 2}}
    apply_overrides(raw, ["train.epochs=9"])
    assert raw == {"train": {"epochs": 2}}


def test_every_field_has_a_description():
    def walk(model):
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation)
            else:
                assert field.description, f"{model.__name__}.{name} has no description"

    walk(ExperimentConfig)


def test_plugin_names_keep_their_own_keys_and_survive_a_round_trip():
    raw = {"data": {"name": "my_data.sets:load", "csv": "a.csv", "window": 3},
           "model": {"name": "nets:tiny", "channels": 8}}
    config = validate_config(raw)
    assert (config.data.csv, config.data.window, config.model.channels) == ("a.csv", 3, 8)
    stored = config.model_dump(mode="json")  # what a run record keeps, and `resume` validates again
    assert validate_config(stored) == config and stored["data"]["window"] == 3


def test_extra_keys_are_refused_for_built_in_names():
    with pytest.raises(SddError, match=r"data\.window: unknown field; allowed: name, data_dir"):
        validate_config({"data": {"name": "digits", "window": 3}})
    with pytest.raises(SddError, match=r"model\.channels: unknown field"):
        validate_config({"model": {"name": "mlp", "channels": 3}})


@pytest.mark.parametrize("name, fragment", [
    ("imagenet", "unknown name 'imagenet'; use one of mnist, fashion_mnist, mnist1d"),
    ("my data:load", "is not module.path:function"),
    ("my_data:", "is not module.path:function"),
    ("a:b:c", "is not module.path:function"),
])
def test_data_names_are_built_in_or_module_colon_function(name, fragment):
    with pytest.raises(SddError, match=re.escape(fragment)) as error:
        validate_config({"data": {"name": name}})
    assert "\n" not in str(error.value)


def test_set_reaches_a_plugins_own_keys_only():
    config = resolve_config("smoke", overrides=["data.name=my_data:load", "data.window=5"])
    assert config.data.window == 5
    with pytest.raises(SddError, match="unknown field 'window'"):
        resolve_config("smoke", overrides=["data.window=5"])


def test_image_models_refuse_vector_datasets():
    for data in ("digits", "mnist1d"):
        with pytest.raises(SddError, match="need image data"):
            validate_config({"data": {"name": data}, "model": {"name": "resnet18"}})


def test_fashion_presets_follow_the_papers_lenet_recipe():
    paper, cpu = load_preset("lenet300-fashion-noise20"), load_preset("lenet300-fashion-cpu")
    for config in (paper, cpu):
        assert (config.data.name, config.model.name) == ("fashion_mnist", "lenet300_100")
        assert (config.train.optimizer, config.train.lr, config.train.momentum) == ("sgd", 0.1, 0.0)
        assert (config.train.batch_size, config.train.weight_decay, config.train.milestones) == (128, 0.0, [])
        assert (config.retrain.mode, config.retrain.rewind_iteration) == ("rewind", 0)
        assert (config.noise.kind, config.noise.rate, config.prune.fraction) == ("symmetric", 0.2, 0.2)
    assert (paper.train.epochs, paper.prune.rounds, paper.data.train_size) == (200, 24, None)
    assert cpu.data.train_size < 60_000 and cpu.train.epochs < 200  # shrunk to fit a laptop


def test_mnist1d_preset_is_an_mlp_on_generated_data():
    config = load_preset("mlp-mnist1d-noise30")
    assert (config.data.name, config.model.name, config.noise.rate) == ("mnist1d", "mlp", 0.3)
    assert config.data.data_dir is None and not config.data.download  # generated, never downloaded
