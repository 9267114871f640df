"""Same science on both paths, torch.compile with exact masks, and the `bench` command."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.config import resolve_config
from sdd_tui.core.engine.bench import omp_env
from sdd_tui.core.events import Message, RoundEnded


def _curve(run_experiment, home, fast: bool) -> list[dict]:
    config = resolve_config("digits-noise40", overrides=[
        "prune.rounds=6", "train.epochs=20", f"runtime.fast={str(fast).lower()}", "runtime.device='cpu'",
        "runtime.threads=1"])
    _, status, events = run_experiment(config, home)
    assert status == "finished"
    return [e.result for e in events if isinstance(e, RoundEnded)]


@pytest.mark.slow
def test_fast_and_slow_paths_draw_the_same_curve(run_experiment, home, monkeypatch):
    import sdd_tui.core.engine.reference
    from sdd_tui import core

    loaded = []
    original = core.engine.reference.loader_batches
    monkeypatch.setattr(core.engine.reference, "loader_batches", lambda *a, **k: loaded.append(1) or original(*a, **k))
    fast, slow = _curve(run_experiment, home, fast=True), _curve(run_experiment, home, fast=False)
    assert len(loaded) == 7 * 20  # the slow path took every epoch from the DataLoader, the fast path none
    differences = [abs(f["test_acc"] - s["test_acc"]) for f, s in zip(fast, slow)]
    assert max(differences) < 0.08 and sum(differences) / len(differences) < 0.04, differences
    for f, s in zip(fast[1:], slow[1:]):  # both memorise the 40% noisy labels once trained long enough
        assert f["noisy_memorized"] > 0.9 and s["noisy_memorized"] > 0.9
        assert f["sparsity"] == s["sparsity"]


@pytest.mark.slow
def test_compiled_run_compiles_once_and_keeps_masks_exact(run_experiment, home, smoke_config, monkeypatch):
    compiled = []
    original = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, *a, **k: compiled.append(model) or original(model, *a, **k))
    run_id, status, events = run_experiment(smoke_config("runtime.compile=true"), home)
    assert status == "finished"
    assert len(compiled) == 1  # one compile serves the dense round and all 3 pruning rounds
    assert any(isinstance(e, Message) and "compiled in" in e.text for e in events)
    checkpoint = torch.load(home / "runs" / run_id / "checkpoint.pt", weights_only=False)
    for name, mask in checkpoint["masks"].items():
        assert (checkpoint["model"][name][~mask] == 0).all()
    eager_home = home.parent / "eager"
    _, _, eager_events = run_experiment(smoke_config(), eager_home)
    curve = [e.result["test_acc"] for e in events if isinstance(e, RoundEnded)]
    eager = [e.result["test_acc"] for e in eager_events if isinstance(e, RoundEnded)]
    assert max(abs(a - b) for a, b in zip(curve, eager)) < 0.05, (curve, eager)


def test_compile_failure_falls_back_to_eager_with_a_warning(run_experiment, home, smoke_config, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken)
    _, status, events = run_experiment(smoke_config("runtime.compile=true", "prune.rounds=1"), home)
    assert status == "finished"
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert any("torch.compile failed" in text and "no C++ compiler" in text for text in warnings)


@pytest.mark.slow
def test_bench_json_reports_both_loops_and_a_full_run_estimate():
    result = CliRunner().invoke(app, ["bench", "--batches", "3", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("project_samples_per_s", "reference_samples_per_s", "ratio", "project_full_run_s",
                "reference_full_run_s"):
        assert report[key] > 0, key
    assert report["ratio"] == pytest.approx(report["project_samples_per_s"] / report["reference_samples_per_s"])
    assert (report["model"], report["data"], report["batches"], report["preset"]) == (
        "lenet300_100", "mnist", 3, "lenet300-noise20")
    assert report["device_name"] and report["omp_env"] == omp_env()
    for side in ("project", "reference"):  # 3 batches: 3 chunks of one batch each, the median is the figure
        rates = report[f"{side}_chunks_samples_per_s"]
        assert len(rates) == 3 and all(rate > 0 for rate in rates)
        assert report[f"{side}_samples_per_s"] == pytest.approx(sorted(rates)[1], rel=1e-3)


@pytest.mark.slow
def test_bench_text_and_user_errors():
    runner = CliRunner()
    text = runner.invoke(app, ["bench", "--batches", "2", "--batch-size", "16", "--device", "cpu"])
    assert text.exit_code == 0, text.output
    assert "ratio" in text.stdout and "samples/s" in text.stdout and "full run" in text.stdout
    bad = runner.invoke(app, ["bench", "--model", "alexnet"])
    assert bad.exit_code == 2 and "error: --model 'alexnet'" in bad.output
    bad = runner.invoke(app, ["bench", "--data", "digits"])
    assert bad.exit_code == 2 and "error: --data 'digits'" in bad.output


def test_the_reference_reads_grey_images_through_torchvision_mnist_itself():
    from torchvision.datasets import MNIST

    from sdd_tui.core.engine.bench import synthetic_images
    from sdd_tui.core.engine.reference import PilImageDataset, pil_loader

    images, labels = synthetic_images((1, 28, 28), 10, 64, seed=3)
    loader = pil_loader(images, labels, batch_size=16, augment=False, workers=0)
    assert isinstance(loader.dataset, MNIST) and len(loader.dataset) == 64
    look_alike = PilImageDataset(images, labels, loader.dataset.transform)
    for index in (0, 17, 63):  # the same pixels, normalised the same way, and the same label
        image, label = loader.dataset[index]
        expected, expected_label = look_alike[index]
        assert torch.equal(image, expected) and label == expected_label == int(labels[index])
    colour, colour_labels = synthetic_images((3, 32, 32), 10, 8)
    assert isinstance(pil_loader(colour, colour_labels, 4, augment=True, workers=0).dataset, PilImageDataset)


@pytest.mark.parametrize(("amp", "expected"), [("true", True), ("false", False)])
def test_runtime_amp_false_trains_without_mixed_precision(run_experiment, home, smoke_config, monkeypatch, amp,
                                                          expected):
    import sdd_tui.core.engine.round_branches
    from sdd_tui import core

    built = []
    real = core.engine.round_branches.Trainer

    def recording(*args, **kwargs):
        built.append(kwargs["amp"])
        return real(*args, **kwargs)

    monkeypatch.setattr(core.engine.round_branches, "Trainer", recording)
    _, status, _ = run_experiment(smoke_config("prune.rounds=1", "train.epochs=1", f"runtime.amp={amp}"), home)
    assert status == "finished" and built and set(built) == {expected}
