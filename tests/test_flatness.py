"""Re-dense training, interpolation and filter-normalised directions on a tiny stored run."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.analysis.flatness import (
    analyze_run,
    filter_normalized_direction,
    last_sparse_lr,
    load_round,
    mix,
    redense,
)
from sdd_tui.core.analysis.redense_options import RedenseOptions
from sdd_tui.core.config import resolve_config
from sdd_tui.core.data.datasets import Dataset
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import RunPaths


@pytest.fixture(scope="module")
def stored_run(run_experiment, tmp_path_factory):
    home = tmp_path_factory.mktemp("flat")
    config = resolve_config("smoke", overrides=["prune.rounds=2", "train.epochs=2", "retrain.compare_reinit=true"])
    run_id, status, _ = run_experiment(config, home)
    assert status == "finished"
    return home, Store(home).run(run_id), config


def test_interpolation_endpoints_are_the_stored_sparse_and_the_redense_evaluations(stored_run):
    home, record, _ = stored_run
    results = analyze_run(record, home, RedenseOptions(rounds=(2,), epochs=1, steps=5, filter_points=5))
    result = results["2"]
    stored = next(r for r in record.rounds if r["round"] == 2)
    line = result["interpolation"]
    assert [p["alpha"] for p in line] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert line[0]["test_acc"] == stored["test_acc"] and line[0]["train_acc"] == stored["train_acc"]
    assert line[0]["test_loss"] == pytest.approx(stored["test_loss"], rel=1e-6)
    assert line[0]["train_loss"] == pytest.approx(stored["train_loss"], rel=1e-6)
    assert line[-1] == {"alpha": 1.0, **result["redense"]}
    assert result["stored"]["test_acc"] == stored["test_acc"]
    assert result["lr"] == 0.05 and result["epochs"] == 1 and result["bn"] == "interpolated"
    plots = result["filter_normalized"]
    assert [r["beta"] for r in plots["sparse"]] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert plots["sparse"][2]["train_loss"] == pytest.approx(line[0]["train_loss"], rel=1e-6)
    assert plots["redense"][2]["train_loss"] == pytest.approx(line[-1]["train_loss"], rel=1e-6)


def test_reinit_branch_endpoint_matches_the_reinit_evaluation(stored_run):
    home, record, _ = stored_run
    result = analyze_run(record, home, RedenseOptions(rounds=(1,), epochs=1, steps=2, branch="reinit"))["1"]
    stored = next(r for r in record.rounds if r["round"] == 1)["reinit"]
    assert result["interpolation"][0]["test_acc"] == stored["test_acc"]


def test_redense_trains_the_pruned_weights_from_zero(stored_run):
    from sdd_tui.core.data.datasets import load_dataset
    from sdd_tui.core.engine.models import build_model

    home, record, config = stored_run
    stored = load_round(RunPaths(home, record.id), 2, torch.device("cpu"))
    data = load_dataset(config.data, config.noise, home, config.runtime.seed)
    model = build_model(config.model, data.input_shape, data.num_classes, 0)
    model.load_state_dict(stored["model"])
    dense = redense(model, data, config, epochs=1, lr=0.05, round_index=2)
    for name, mask in stored["masks"].items():
        assert torch.count_nonzero(stored["model"][name][~mask]) == 0
        assert torch.count_nonzero(dense[name][~mask]) > 0


def test_mix_is_exact_at_the_ends_and_linear_between():
    first = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    second = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(9)}
    assert torch.equal(mix(first, second, 0.0)["w"], first["w"])
    assert torch.equal(mix(first, second, 1.0)["w"], second["w"])
    assert torch.allclose(mix(first, second, 0.25)["w"], torch.tensor([1.5, 3.0]))
    assert mix(first, second, 0.25)["n"] == 3 and mix(first, second, 0.75)["n"] == 9


def test_filter_normalized_direction_matches_filter_norms_and_masks():
    drawn = torch.Generator().manual_seed(1)  # not the global stream: other tests move it
    weights = {"conv": torch.randn(4, 3, 2, 2, generator=drawn), "bias": torch.randn(4, generator=drawn),
               "lin": torch.randn(5, 6, generator=drawn)}
    masks = {"lin": torch.rand(5, 6, generator=drawn) > 0.5}
    masks["lin"][0] = True
    masks["lin"][:, 0] = True  # every filter keeps a weight (a filter pruned whole has no norm to match)
    direction = filter_normalized_direction(weights, masks, torch.Generator().manual_seed(0))
    assert torch.count_nonzero(direction["bias"]) == 0
    assert torch.count_nonzero(direction["lin"][~masks["lin"]]) == 0
    for name in ("conv", "lin"):
        assert torch.allclose(direction[name].flatten(1).norm(dim=1), weights[name].flatten(1).norm(dim=1))


def test_last_sparse_lr_follows_the_schedule_and_finetune():
    config = resolve_config("smoke", overrides=["train.epochs=10", "train.milestones=[4, 8]", "train.gamma=0.1"])
    assert last_sparse_lr(config, 3) == pytest.approx(0.05 * 0.01)
    finetune = resolve_config("smoke", overrides=["retrain.mode=finetune", "retrain.finetune_lr=0.002"])
    assert last_sparse_lr(finetune, 1) == 0.002 and last_sparse_lr(finetune, 0) == 0.05


def test_missing_round_is_a_user_error_naming_the_stored_rounds(stored_run):
    home, record, _ = stored_run
    with pytest.raises(SddError, match=r"round 7 has no stored weights .* rounds stored: 0, 1, 2"):
        analyze_run(record, home, RedenseOptions(rounds=(7,), epochs=1))


def test_analyze_command_stores_results_with_the_run(stored_run):
    home, record, _ = stored_run
    runner = CliRunner()
    ok = runner.invoke(app, ["analyze", record.id, "--redense", "--rounds", "1,2", "--epochs", "1",
                             "--interp-steps", "3", "--home", str(home)])
    assert ok.exit_code == 0, ok.output
    assert "round 2 (" in ok.output and "stored under analyses.redense" in ok.output
    analyses = Store(home).get_run(record.id)["analyses"]["redense"]
    assert sorted(analyses) == ["1", "2"] and len(analyses["2"]["interpolation"]) == 3
    bad = runner.invoke(app, ["analyze", record.id, "--redense", "--rounds", "x", "--home", str(home)])
    assert bad.exit_code == 2 and "error: --rounds 'x'" in bad.output
    missing = runner.invoke(app, ["analyze", record.id, "--redense", "--home", str(home)])
    assert missing.exit_code == 2 and "--redense needs --rounds" in missing.output


def test_recomputed_batch_norm_statistics_are_the_training_batches_average():
    from sdd_tui.core.analysis.flatness import recompute_bn

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model[1].running_mean.fill_(7.0)  # stale statistics from elsewhere
    model.eval()
    inputs = torch.randn(100, 3) * 3 + 5
    recompute_bn(model, inputs, batch_size=50)
    hidden = model[0](inputs).detach()
    assert torch.allclose(model[1].running_mean, hidden.mean(0), atol=1e-5)
    halves = (hidden[:50].var(0) + hidden[50:].var(0)) / 2  # the mean of the batches' unbiased variances
    assert torch.allclose(model[1].running_var, halves, atol=1e-4)
    assert not model.training  # the mode it had


def test_interpolation_can_recompute_batch_norm_at_every_point():
    from sdd_tui.core.analysis.flatness import interpolate

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    data = Dataset("synthetic", x, torch.zeros(64, dtype=torch.long), torch.zeros(64, dtype=torch.long),
                   torch.zeros(64, dtype=torch.bool), x[:16], torch.zeros(16, dtype=torch.long), 2)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    first = {k: v.clone() for k, v in model.state_dict().items()}
    second = {k: (v + 1.0 if v.is_floating_point() else v) for k, v in first.items()}
    interpolate(model, first, second, data, steps=3, batch_size=64)
    assert torch.equal(model[1].running_mean, second["1.running_mean"])  # interpolated: the endpoint's own
    interpolate(model, first, second, data, steps=3, batch_size=64, bn_from=x)
    assert torch.allclose(model[1].running_mean, model[0](x).detach().mean(0), atol=1e-5)


def test_analyze_takes_the_batch_norm_choice_and_records_it(stored_run):
    home, record, _ = stored_run
    options = RedenseOptions(rounds=(1,), epochs=1, steps=3, bn="recompute", bn_samples=100)
    result = analyze_run(record, home, options)["1"]
    assert result["bn"] == "recomputed" and result["bn_samples"] == 100
    with pytest.raises(SddError, match="--bn 'average': use interpolate"):
        analyze_run(record, home, RedenseOptions(rounds=(1,), epochs=1, steps=3, bn="average"))
    cli = CliRunner().invoke(app, ["analyze", record.id, "--redense", "--rounds", "1", "--epochs", "1",
                                   "--interp-steps", "3", "--bn", "recompute", "--home", str(home)])
    assert cli.exit_code == 0, cli.output
    assert Store(home).get_run(record.id)["analyses"]["redense"]["1"]["bn"] == "recomputed"
