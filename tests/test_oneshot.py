"""One-shot pruning: every round prunes the trained dense network; levels as separate runs sharing one dense round."""

from __future__ import annotations

import pytest
import torch

from sdd_tui.core.engine import pruning
from sdd_tui.core.engine.checkpoint import read_round_file
from sdd_tui.core.errors import SddError
from sdd_tui.core.events import Message, RoundEnded, RoundStarted
from sdd_tui.core.format import rounds_text
from sdd_tui.core.history.run_index import summary
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import RunPaths
from sdd_tui.core.runs.progress import Progress

ONESHOT = ("prune.schedule=oneshot", "prune.rounds=3", "model.hidden=[24, 12]")


def results(events):
    return {e.result["round"]: e.result for e in events if isinstance(e, RoundEnded)}


def without_time(result):
    return {k: v for k, v in result.items() if k != "seconds"}


def round_file(home, run_id, index):
    return read_round_file(RunPaths(home, run_id).round_file(index), torch.device("cpu"))


@pytest.fixture(scope="module")
def oneshot_run(run_experiment, tmp_path_factory):
    from sdd_tui.core.config import resolve_config

    home = tmp_path_factory.mktemp("oneshot")
    config = resolve_config("smoke", overrides=list(ONESHOT))
    run_id, status, events = run_experiment(config, home)
    assert status == "finished"
    return home, run_id, results(events)


def test_each_round_prunes_the_trained_dense_network_to_its_level(oneshot_run):
    home, run_id, rounds = oneshot_run
    dense = round_file(home, run_id, 0)
    scores = {name: dense["model"][name].abs() for name in dense["masks"]}
    for level in (1, 2, 3):
        stored = round_file(home, run_id, level)
        expected = pruning.prune_masks(scores, dense["masks"], 1 - 0.8**level)
        assert all(torch.equal(stored["masks"][n], expected[n]) for n in expected), level
        assert rounds[level]["sparsity"] == pytest.approx(1 - 0.8**level, abs=2e-3)


def test_levels_reusing_the_dense_round_give_the_rounds_of_the_whole_run(oneshot_run, run_experiment, smoke_config):
    home, dense_id, whole = oneshot_run
    config = smoke_config(*ONESHOT, "prune.levels=[1, 3]", f"prune.dense_from={dense_id}")
    run_id, status, events = run_experiment(config, home)
    assert status == "finished"
    mine = results(events)
    assert sorted(mine) == [1, 3]  # no dense round of its own, no round 2
    for level in (1, 3):
        assert without_time(mine[level]) == without_time(whole[level])
    said = [e.text for e in events if isinstance(e, Message)]
    assert any(f"dense round reused from run {dense_id}" in line for line in said)
    stored = Store(home).get_run(run_id)["rounds"]
    assert [r["round"] for r in stored] == [1, 3]
    progress = Progress()  # the ETA counts the levels this run trains, not every round
    for event in events:
        progress.update(event)
        if isinstance(event, RoundStarted):
            assert progress.epochs_left == 2 * config.train.epochs and progress.fraction_done == 0
            break


def test_a_run_of_the_dense_round_only_then_one_level(run_experiment, smoke_config, tmp_path):
    dense_id, status, events = run_experiment(smoke_config(*ONESHOT, "prune.levels=[]"), tmp_path)
    assert status == "finished" and sorted(results(events)) == [0]
    level_id, status, events = run_experiment(smoke_config(*ONESHOT, "prune.levels=[2]",
                                                           f"prune.dense_from={dense_id}"), tmp_path)
    assert status == "finished" and sorted(results(events)) == [2]
    store = Store(tmp_path)  # `runs` counts a run of some levels up to its last one: done, not 2 of 3
    assert rounds_text(summary(store.get_run(dense_id))) == "0/0"
    assert rounds_text(summary(store.get_run(level_id))) == "2/2"


def test_reusing_a_dense_round_of_other_settings_or_none_is_one_line(oneshot_run, run_experiment, smoke_config):
    home, dense_id, _ = oneshot_run
    other = smoke_config(*ONESHOT, "prune.levels=[1]", f"prune.dense_from={dense_id}", "train.lr=0.2")
    with pytest.raises(SddError, match=r"train\.lr=0\.05 \(here 0\.2\)"):
        run_experiment(other, home)
    missing = smoke_config(*ONESHOT, "prune.levels=[1]", "prune.dense_from=20990101-000000-beef")
    with pytest.raises(SddError, match="has no finished dense round"):
        run_experiment(missing, home)


def test_finetune_oneshot_starts_every_round_from_the_trained_dense_weights(run_experiment, smoke_config, tmp_path,
                                                                           monkeypatch):
    from sdd_tui.core.engine.training import Trainer

    starts = {}
    original = Trainer.train

    def spy(self, start_iteration=0, **kwargs):
        starts[self.round_index] = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        return original(self, start_iteration, **kwargs)

    monkeypatch.setattr(Trainer, "train", spy)
    run_id, status, _ = run_experiment(smoke_config(*ONESHOT, "retrain.mode=finetune"), tmp_path)
    assert status == "finished"
    dense = round_file(tmp_path, run_id, 0)["model"]
    for level in (1, 2, 3):
        for name, weights in starts[level].items():  # before the trainer applies the round's masks
            assert torch.equal(weights, dense[name]), (level, name)


def test_levels_and_their_rules_are_validated(smoke_config):
    with pytest.raises(SddError, match="levels are for prune.schedule=oneshot"):
        smoke_config("prune.levels=[1]")
    with pytest.raises(SddError, match="levels go past prune.rounds=3"):
        smoke_config(*ONESHOT, "prune.levels=[4]")
    with pytest.raises(SddError, match="nothing to train"):
        smoke_config(*ONESHOT, "prune.levels=[]", "prune.dense_from=abcd")
    assert smoke_config(*ONESHOT, "prune.levels=[2]", "prune.dense_from=abcd").prune.trained_rounds() == [2]
    assert smoke_config(*ONESHOT).prune.trained_rounds() == [0, 1, 2, 3]
