"""`sdd-tui sweep --levels`: one-shot levels as members sharing a dense member, two phases, one curve."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.analysis.figures import figure_one
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.records import SweepRecord
from sdd_tui.core.history.store import Store
from sdd_tui.core.sweeps.sweep import expand_sweep, sweep_curves
from sdd_tui.core.sweeps.sweep_levels import parse_levels, run_in_phases, with_levels

runner = CliRunner()
ONESHOT = ["prune.schedule=oneshot", "prune.rounds=2"]


def test_levels_accept_ranges_and_lists():
    assert parse_levels("1-3,5") == [1, 2, 3, 5]
    assert parse_levels("4,2,2") == [2, 4]
    for bad in ("0-3", "x", "3-1", ""):
        with pytest.raises(SddError, match="--levels"):
            parse_levels(bad)


def test_each_grid_point_and_seed_becomes_a_dense_member_and_one_member_per_level():
    members = with_levels(expand_sweep("smoke", None, ONESHOT, [0, 1], {}), [1, 2])
    names = [f"smoke level={level} seed={seed}" for seed in (0, 1) for level in (0, 1, 2)]
    assert [m["name"] for m in members] == names
    assert len({m["run_id"] for m in members}) == 6
    dense = {m["seed"]: m for m in members if m["level"] == 0}
    for member in members:
        prune = member["config"]["prune"]
        if member["level"] == 0:
            assert prune["levels"] == [] and prune["dense_from"] is None and member["dense_member"] is None
        else:
            assert prune["levels"] == [member["level"]]
            assert prune["dense_from"] == member["dense_member"] == dense[member["seed"]]["run_id"]


def test_levels_need_a_oneshot_config_with_enough_rounds():
    with pytest.raises(SddError, match=r"^--levels needs prune.schedule=oneshot .* add --set prune.schedule=oneshot$"):
        with_levels(expand_sweep("smoke", None, [], [0], {}), [1])
    with pytest.raises(SddError, match="levels go past prune.rounds=2"):
        with_levels(expand_sweep("smoke", None, ONESHOT, [0], {}), [3])


def _fake_phase(store: Store, outcome: dict[int, str], ran: list[list[str]]):
    """A run_phase that records each member with the status `outcome` gives its level (default finished)."""

    def run_phase(members, create):
        ran.append([m["name"] for m in members])
        for member in members:
            store.create_run({"id": member["run_id"], "name": member["name"], "config": member["config"],
                              "status": outcome.get(member["level"], "finished"), "started": time.time(),
                              "rounds": []})
        return "done"

    return run_phase


def test_levels_wait_for_their_dense_member_and_are_skipped_when_it_failed(home):
    store = Store(home)
    members = with_levels(expand_sweep("smoke", None, ONESHOT, [0], {}), [1, 2])
    ran, said = [], []
    status = run_in_phases(store, SweepRecord.parse({"id": "sw-1", "members": members}), members, _fake_phase(store, {0: "failed"}, ran), said.append,
                           True)
    assert ran == [["smoke level=0 seed=0"]] and status == "done"
    assert said == ["2 level member(s) not started: their dense member did not finish"]


def test_a_stopped_dense_member_leaves_the_levels_for_resume(home):
    store = Store(home)
    members = with_levels(expand_sweep("smoke", None, ONESHOT, [0], {}), [1])
    ran = []
    run_in_phases(store, SweepRecord.parse({"id": "sw-1", "members": members}), members, _fake_phase(store, {0: "stopped"}, ran), print, True)
    assert ran == [["smoke level=0 seed=0"]]
    store.update_run(members[0]["run_id"], status="finished")  # a resume: only the level is left
    ran.clear()
    run_in_phases(store, SweepRecord.parse({"id": "sw-1", "members": members}), members[1:], _fake_phase(store, {}, ran), print, False)
    assert ran == [["smoke level=1 seed=0"]]


@pytest.mark.slow
def test_a_local_levels_sweep_trains_one_dense_round_and_plots_one_curve(home, tmp_path, run_experiment,
                                                                          smoke_config):
    args = ["sweep", "--preset", "smoke", *sum((["--set", o] for o in ONESHOT), []), "--levels", "1-2",
            "--max-parallel", "2", "--home", str(home)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    store = Store(home)
    (sweep,) = store.list_sweeps()
    assert sweep["status"] == "finished" and sweep["levels"] == [1, 2]
    records = [store.get_run(m["run_id"]) for m in sweep["members"]]
    assert [[r["round"] for r in record["rounds"]] for record in records] == [[0], [1], [2]]
    # the levels are those of a one-shot run that trained all of them in one process
    _, _, events = run_experiment(smoke_config(*ONESHOT), tmp_path / "whole")
    whole = {e.result["round"]: e.result for e in events if type(e).__name__ == "RoundEnded"}
    for record in records:
        (mine,) = record["rounds"]
        assert mine["test_acc"] == whole[mine["round"]]["test_acc"]
        assert mine["learning_distance"] == pytest.approx(whole[mine["round"]]["learning_distance"])
    (curve,) = sweep_curves(store, sweep["id"])
    assert [(row["round"], row["seeds"]) for row in curve["rounds"]] == [(0, 1), (1, 1), (2, 1)]
    figure = figure_one(records)
    assert [line.get_label() for line in figure.axes[0].get_lines()][:1] == ["smoke (1 seed: 0)"]
    assert len(figure.axes[0].get_lines()[0].get_xdata()) == 3  # one curve through the three runs
    plotted = runner.invoke(app, ["plot", "--sweep", sweep["id"], "-o", str(tmp_path / "f.png"), "--home", str(home)])
    assert plotted.exit_code == 0, plotted.output
    shown = runner.invoke(app, ["sweeps", "show", sweep["id"], "--home", str(home)])
    assert "--levels 1,2" in " ".join(shown.output.split())  # the line may wrap
