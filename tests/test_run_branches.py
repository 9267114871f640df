"""`sdd-tui branch ID reinit|random-prune`: branches of a finished run, stored with it and drawn dashed."""

from __future__ import annotations

import re

import pytest
import torch
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.analysis.figures import figure_one
from sdd_tui.core.analysis.results import run_json
from sdd_tui.core.config import resolve_config
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import RunPaths
from sdd_tui.widgets.series import accuracy_series

runner = CliRunner()
SMALL = ("prune.rounds=2", "train.epochs=2", "model.hidden=[24, 12]")


def tiny(*overrides: str):
    return resolve_config("smoke", overrides=[*SMALL, *overrides])


def without_time(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "seconds"}


def branch(home, *args: str):
    return runner.invoke(app, ["branch", *args, "--home", str(home)])


def round_file(home, run_id, index):
    return torch.load(RunPaths(home, run_id).round_file(index), weights_only=True)


@pytest.fixture(scope="module")
def plain_run(run_experiment, tmp_path_factory):
    home = tmp_path_factory.mktemp("branches")
    run_id, status, _ = run_experiment(tiny(), home)
    assert status == "finished"
    return home, run_id


def test_a_reinit_branch_afterwards_gives_what_compare_reinit_gives(plain_run, run_experiment, tmp_path):
    home, run_id = plain_run
    result = branch(home, run_id, "reinit", "--rounds", "1-2")
    assert result.exit_code == 0, result.output
    assert re.search(r"^round 2 \(36\.\d\d% sparse\): reinit test \d+\.\d%", result.output, re.M)
    compared_id, _, _ = run_experiment(tiny("retrain.compare_reinit=true"), tmp_path)
    afterwards = Store(home).get_run(run_id)["rounds"]
    during = Store(tmp_path).get_run(compared_id)["rounds"]
    for mine, theirs in zip(afterwards[1:], during[1:]):
        assert without_time(mine["reinit"]) == without_time(theirs["reinit"])
        assert without_time({k: v for k, v in mine.items() if k != "reinit"}) == \
            without_time({k: v for k, v in theirs.items() if k != "reinit"})  # the ticket's own result unchanged
    stored = round_file(home, run_id, 2)
    assert stored["result"]["reinit"] == afterwards[2]["reinit"]
    assert all(torch.count_nonzero(stored["reinit_model"][n][~m]) == 0 for n, m in stored["masks"].items())
    again = branch(home, run_id, "reinit")
    assert again.exit_code == 0 and "already have a reinit branch; skipped" in again.output


def test_a_random_prune_branch_keeps_each_layers_sparsity_with_other_masks(plain_run, monkeypatch):
    from sdd_tui.core.engine.training import Trainer

    home, run_id = plain_run
    starts = []
    original = Trainer.train

    def spy(self, start_iteration=0, **kwargs):
        weights = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        starts.append((str(self.branch), start_iteration, weights))
        return original(self, start_iteration, **kwargs)

    monkeypatch.setattr(Trainer, "train", spy)
    result = branch(home, run_id[:12], "random-prune", "--rounds", "2")
    assert result.exit_code == 0, result.output
    rewind = torch.load(RunPaths(home, run_id).checkpoint, weights_only=True)["rewind"]
    ticket = round_file(home, run_id, 2)["masks"]
    ((kind, iteration, weights),) = starts  # as the rewind mode starts its rounds: iteration t of the dense run
    assert kind == "main" and iteration == 0  # the round's data order: only the masks differ
    # the official start (the default): the rewind weights times the ticket's masks
    assert all(torch.equal(weights[name], rewind[name] * ticket[name] if name in ticket else rewind[name])
               for name in weights)
    record = Store(home).run(run_id)
    assert "random_prune" not in record.rounds[1]
    summary = record.rounds[2]["random_prune"]
    assert summary["start"] == "official"
    assert 0 <= summary["test_acc"] <= 1 and summary["learning_distance"] > 0
    stored = round_file(home, run_id, 2)
    for name, mask in stored["masks"].items():
        shuffled = stored["random_prune_masks"][name]
        assert int(shuffled.sum()) == int(mask.sum()) and not torch.equal(shuffled, mask)
        assert torch.count_nonzero(stored["random_prune_model"][name][~shuffled]) == 0
    assert "random_prune" in run_json(record)["branch_phases"]


def test_branches_are_drawn_dashed_in_the_figure_and_the_dashboard(plain_run):
    home, run_id = plain_run
    record = Store(home).get_run(run_id)
    if "random_prune" not in record["rounds"][2]:
        assert branch(home, run_id, "random-prune").exit_code == 0
        record = Store(home).get_run(run_id)
    lines = {line.get_label(): line.get_linestyle() for line in figure_one([record]).axes[0].get_lines()}
    label = next(iter(lines))
    assert lines[f"{label}, random prune"] == ":"
    series = {line.label: line for line in accuracy_series(record["rounds"])}
    assert series["random prune test"].marker == "┈" and len(series["random prune test"].xs) >= 1


def test_branch_refuses_what_it_cannot_do(plain_run, home, run_experiment):
    home_dir, run_id = plain_run
    assert "unknown branch 'shuffle'" in branch(home_dir, run_id, "shuffle").output
    zero = branch(home_dir, run_id, "reinit", "--rounds", "0-1")
    assert zero.exit_code == 2 and "round 0 is the dense network" in zero.output
    far = branch(home_dir, run_id, "reinit", "--rounds", "7")
    assert far.exit_code == 2 and "has no stored round 7; rounds stored: 1, 2" in far.output
    reinit_id, _, _ = run_experiment(tiny("retrain.mode=reinit", "prune.rounds=1"), home)
    refused = branch(home, reinit_id, "reinit")
    assert refused.exit_code == 2 and "already reports the reinit branch" in refused.output
    Store(home).update_run(reinit_id, status="running", pid=1, host=None)
    assert "still running" in branch(home, reinit_id, "random-prune").output


def test_a_random_prune_branch_can_be_analysed_for_flatness(plain_run):
    from sdd_tui.core.analysis.flatness import analyze_run
    from sdd_tui.core.analysis.redense_options import RedenseOptions

    home, run_id = plain_run
    if "random_prune" not in Store(home).get_run(run_id)["rounds"][2]:
        assert branch(home, run_id, "random-prune", "--rounds", "2").exit_code == 0
    record = Store(home).run(run_id)
    options = RedenseOptions(rounds=(2,), epochs=1, steps=3, branch="random_prune", filter_points=3)
    (result,) = analyze_run(record, home, options).values()
    stored = record.rounds[2]["random_prune"]
    assert result["stored"]["test_acc"] == stored["test_acc"]
    assert result["sparse"]["test_acc"] == pytest.approx(stored["test_acc"])  # it evaluates the branch's own weights


def test_random_prune_of_a_oneshot_level_starts_from_the_dense_weights_it_reused(run_experiment, tmp_path,
                                                                                monkeypatch):
    from sdd_tui.core.engine.training import Trainer

    oneshot = ("prune.schedule=oneshot", "retrain.mode=finetune")
    dense_id, _, _ = run_experiment(tiny(*oneshot, "prune.levels=[]"), tmp_path)
    level_id, status, _ = run_experiment(tiny(*oneshot, "prune.levels=[2]", f"prune.dense_from={dense_id}"), tmp_path)
    assert status == "finished"
    starts = []
    original = Trainer.train

    def spy(self, start_iteration=0, **kwargs):
        starts.append({n: p.detach().clone() for n, p in self.model.named_parameters()})
        return original(self, start_iteration, **kwargs)

    monkeypatch.setattr(Trainer, "train", spy)
    result = branch(tmp_path, level_id, "random-prune", "--start", "dense")
    assert result.exit_code == 0, result.output
    dense = round_file(tmp_path, dense_id, 0)["model"]
    (weights,) = starts
    assert all(torch.equal(weights[name], dense[name]) for name in weights)
    assert "random_prune" in Store(tmp_path).get_run(level_id)["rounds"][0]  # its only round, level 2
