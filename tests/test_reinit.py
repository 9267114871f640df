"""Tickets vs random reinit, per-round weight files, and learning distance in every retrain mode."""

from __future__ import annotations

import pytest
import torch

from sdd_tui.core.config import resolve_config
from sdd_tui.core.engine.models import build_model
from sdd_tui.core.engine.round_result import learning_distance
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import RunPaths
from sdd_tui.core.seeds import Purpose, stream_seed

SMALL = ("prune.rounds=2", "train.epochs=2", "model.hidden=[24, 12]")


def tiny(*overrides: str):
    return resolve_config("smoke", overrides=[*SMALL, *overrides])


@pytest.fixture(scope="module")
def compare_run(run_experiment, tmp_path_factory):
    home = tmp_path_factory.mktemp("compare")
    config = tiny("retrain.compare_reinit=true")
    run_id, status, _ = run_experiment(config, home)
    assert status == "finished"
    return home, run_id, config


def load(home, run_id, round_index):
    return torch.load(RunPaths(home, run_id).round_file(round_index), weights_only=False)


def test_every_round_keeps_its_weights_masks_and_result(compare_run):
    home, run_id, config = compare_run
    record = Store(home).get_run(run_id)
    for result in record["rounds"]:
        stored = load(home, run_id, result["round"])
        assert stored["round"] == result["round"]
        assert stored["result"]["test_acc"] == result["test_acc"]
        assert set(stored["masks"]) == {"hidden.0.weight", "hidden.1.weight"}
        pruned = sum(int((~m).sum()) for m in stored["masks"].values())
        total = sum(m.numel() for m in stored["masks"].values())
        assert pruned / total == pytest.approx(result["sparsity"])


def test_reinit_branch_keeps_the_mask_and_differs_in_weights(compare_run):
    home, run_id, _ = compare_run
    for round_index in (1, 2):
        stored = load(home, run_id, round_index)
        ticket, reinit = stored["model"], stored["reinit_model"]
        for name, mask in stored["masks"].items():
            assert not mask.all()
            assert torch.count_nonzero(ticket[name][~mask]) == 0
            assert torch.count_nonzero(reinit[name][~mask]) == 0
            assert not torch.allclose(ticket[name][mask], reinit[name][mask])
    assert "reinit_model" not in load(home, run_id, 0)  # the dense round has no branch


def test_reinit_results_are_stored_next_to_the_ticket(compare_run):
    home, run_id, _ = compare_run
    rounds = Store(home).get_run(run_id)["rounds"]
    assert "reinit" not in rounds[0]
    for result in rounds[1:]:
        branch = result["reinit"]
        assert 0 <= branch["test_acc"] <= 1 and branch["learning_distance"] > 0
        assert branch["learning_distance"] != result["learning_distance"]


def initial_weights(config, seed):
    model = build_model(config.model, tuple(config.data.shape), config.data.num_classes, seed)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def distance_of(config, stored, weights_key, init_seed):
    model = build_model(config.model, tuple(config.data.shape), config.data.num_classes, 0)
    model.load_state_dict(stored[weights_key])
    return learning_distance(model, initial_weights(config, init_seed), stored["masks"])


@pytest.mark.parametrize("mode", ["rewind", "finetune", "lr_rewind", "scratch", "reinit"])
def test_learning_distance_is_measured_from_the_init_the_round_started_from(run_experiment, tmp_path, mode):
    config = tiny(f"retrain.mode={mode}", "prune.rounds=1")
    run_id, status, _ = run_experiment(config, tmp_path)
    assert status == "finished"
    result = Store(tmp_path).get_run(run_id)["rounds"][1]
    stored = load(tmp_path, run_id, 1)
    # the seed tree's streams (core.seeds): the dense init, and round 1's fresh init
    dense_seed = stream_seed(config.runtime.seed, Purpose.INIT)
    fresh_seed = stream_seed(config.runtime.seed, Purpose.FRESH_INIT, 1)
    if mode == "reinit":  # the curve is the reinit branch's; the ticket sits under "ticket"
        assert result["learning_distance"] == pytest.approx(distance_of(config, stored, "reinit_model", fresh_seed))
        assert result["ticket"]["learning_distance"] == pytest.approx(distance_of(config, stored, "model", dense_seed))
    else:
        init_seed = fresh_seed if mode == "scratch" else dense_seed
        assert result["learning_distance"] == pytest.approx(distance_of(config, stored, "model", init_seed))
