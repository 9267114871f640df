"""The registries are the one list of names: a model, a pruning score and a dataset registered in one place
each are valid in a config, run, and are offered by the new-experiment form."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from sdd_test_helpers import error_line, invoke

from sdd_tui.core.config import resolve_config, validate_config
from sdd_tui.core.engine import models, pruning
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import Store
from sdd_tui.core.registry import DATASETS, MODELS, SCORES, Registry

CLASSES = 3
USED = {"model": "tiny_net", "score": "largest_first", "data": "three_blobs"}
OURS = ["--set", f"model.name={USED['model']}", "--set", f"prune.method={USED['score']}",
        "--set", f"data.name={USED['data']}"]
CALLS: list[str] = []  # which of the registered functions the run called


def tiny_net(config, input_shape, num_classes):
    CALLS.append("model")
    return models.MLP(int(torch.tensor(input_shape).prod()), [8], num_classes)


def largest_first(model, masks, generator, batch):
    """Prunes the largest weights first: the opposite of magnitude pruning."""
    CALLS.append("score")
    return {name: -scores for name, scores in pruning.magnitude_scores(model, masks).items()}


def three_blobs(config, data_dir, seed, stop):
    CALLS.append("data")
    generator = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(CLASSES, 6, generator=generator)
    y_train, y_test = torch.arange(90) % CLASSES, torch.arange(30) % CLASSES
    x_train = centres[y_train] + torch.randn(90, 6, generator=generator)
    return x_train, y_train, centres[y_test] + torch.randn(30, 6, generator=generator), y_test


@pytest.fixture
def registered():
    """The three, each registered in its one place, for the test only."""
    models.register(USED["model"])(tiny_net)
    SCORES.register(USED["score"])(largest_first)
    DATASETS.register(USED["data"], image=False, classes=CLASSES)(three_blobs)
    CALLS.clear()
    yield
    for registry, name in ((MODELS, USED["model"]), (SCORES, USED["score"]), (DATASETS, USED["data"])):
        registry.remove(name)


def test_unregistered_names_are_one_line_naming_the_registered_choices():
    for field, name, listed in (("model.name", USED["model"], "lenet300_100, mlp, resnet18"),
                                ("prune.method", USED["score"], "magnitude, gradient, random"),
                                ("data.name", USED["data"], "mnist, fashion_mnist, mnist1d")):
        with pytest.raises(SddError, match=rf"{field}: .*unknown name '{name}'; use one of {listed}") as error:
            resolve_config("smoke", overrides=[f"{field}={name}"])
        assert "\n" not in str(error.value)


def test_registered_names_validate_and_are_listed_in_the_error_for_a_typo(registered):
    config = resolve_config("smoke", overrides=[text for text in OURS if text != "--set"])
    assert (config.model.name, config.prune.method, config.data.name) == tuple(USED.values())
    with pytest.raises(SddError, match=rf"unknown name 'tiny'; use one of .*vgg16, {USED['model']}, or module"):
        validate_config({"model": {"name": "tiny"}})


def test_a_smoke_run_trains_the_registered_model_on_the_registered_data_with_the_registered_score(registered,
                                                                                                   home):
    result = invoke("--preset", "smoke", *OURS, "--set", "prune.rounds=1", "--set", "train.epochs=1",
                    "--home", str(home))
    assert result.exit_code == 0, result.output
    assert set(CALLS) == {"model", "data", "score"}, CALLS
    (record,) = Store(home).list_runs()
    assert record["status"] == "finished"
    stored = record["config"]
    assert (stored["model"]["name"], stored["prune"]["method"], stored["data"]["name"]) == tuple(USED.values())


def test_an_image_only_model_refuses_a_vector_dataset_by_the_registries_facts(registered, home):
    MODELS.add("tiny_conv", tiny_net, image_only=True)
    try:
        result = invoke("--preset", "smoke", "--set", "model.name=tiny_conv", "--set", f"data.name={USED['data']}",
                        "--home", str(home))
        assert result.exit_code == 2
        line = error_line(result)
        assert "resnet18, resnet101, vgg16, tiny_conv need image data" in line
        assert USED["data"] not in line.split("need image data")[1]  # the vector dataset is not offered
        assert not (home / "runs").exists() or Store(home).list_runs() == []
    finally:
        MODELS.remove("tiny_conv")


async def test_the_new_experiment_form_offers_the_registered_names(registered, home):
    from textual.widgets import Select

    from sdd_tui.app import SddApp
    from sdd_tui.screens.new_experiment import NewExperimentScreen

    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(NewExperimentScreen("smoke"))
        await pilot.pause()
        for field, registry, name in (("model-name", MODELS, USED["model"]), ("prune-method", SCORES, USED["score"]),
                                      ("data-name", DATASETS, USED["data"])):
            offered = [value for _, value in app.screen.query_one(f"#input-{field}", Select)._options]
            assert offered == list(registry) and name in offered, (field, offered)


def test_a_registered_name_cannot_look_like_a_plugin():
    with pytest.raises(ValueError, match="without ':'"):
        Registry("model").add("my_module:net", tiny_net)


def test_the_config_reads_the_names_without_importing_torch_or_a_builder(tmp_path):
    probe = ("import sys\nfrom sdd_tui.core.config import validate_config\n"
             "validate_config({'model': {'name': 'vgg16'}, 'prune': {'method': 'gradient'},"
             " 'data': {'name': 'cifar10'}})\n"
             "print(sorted({'torch', 'sdd_tui.core.engine.models', 'sdd_tui.core.data.datasets', 'sdd_tui.core.engine.pruning'}"
             " & set(sys.modules)))")
    shown = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.strip() == "[]"
