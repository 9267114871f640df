"""The TUI's plain data logic: chart series, seed groups, phases, following events, the form, tables."""

from __future__ import annotations

import pytest

from sdd_tui.core.events import EpochEnded, Message, RoundEnded, RoundStarted, RunEnded, RunStarted
from sdd_tui.follow import EventFollower
from sdd_tui.runview import RunView
from sdd_tui.screens.history import filter_rows, sort_rows
from sdd_tui.screens.new_experiment import EXTRA, GENERAL, build_config
from sdd_tui.widgets.panels import progress_text
from sdd_tui.widgets.phases import phases_for_chart
from sdd_tui.widgets.series import (
    accuracy_series,
    dense_accuracy,
    downsample,
    group_by_setting,
    mean_curve,
)  # fmt: skip


def rounds_from(accuracies: list[float], train: list[float] | None = None) -> list[dict]:
    return [{"round": i, "sparsity": 1 - 0.8**i, "test_acc": acc, "best_test_acc": acc + 0.01,
             "train_acc": (train or [1.0] * len(accuracies))[i], "learning_distance": float(i)}
            for i, acc in enumerate(accuracies)]


def record(run_id: str, rate: float, seed: int, accuracies: list[float]) -> dict:
    config = {"name": "demo", "noise": {"kind": "symmetric", "rate": rate}, "runtime": {"seed": seed, "device": "cpu"},
              "train": {"epochs": 2}}
    return {"id": run_id, "name": "demo", "config": config, "rounds": rounds_from(accuracies)}


def test_accuracy_series_skip_missing_values_and_use_percent():
    rounds = rounds_from([0.5, 0.6, 0.7])
    rounds[1]["test_acc"] = None
    test, best, train = accuracy_series(rounds)
    assert test.ys == [50.0, 70.0] and len(test.xs) == 2
    assert len(best.ys) == 3 and train.ys == [100.0, 100.0, 100.0]
    assert dense_accuracy(rounds) == 50.0


def test_downsample_keeps_the_ends_and_bounds_the_count():
    xs = list(range(1000))
    small_x, small_y = downsample(xs, [2 * x for x in xs], 50)
    assert len(small_x) <= 50 and small_x[0] == 0 and small_x[-1] == 999
    assert all(y == 2 * x for x, y in zip(small_x, small_y))
    assert downsample([1, 2], [3, 4], 50) == ([1, 2], [3, 4])


def test_runs_differing_only_by_seed_form_one_group_with_mean_and_std():
    runs = [record("a", 0.2, 0, [0.5, 0.7]), record("b", 0.2, 1, [0.7, 0.9]), record("c", 0.4, 0, [0.4, 0.6])]
    groups = group_by_setting(runs)
    assert [len(g.records) for g in groups] == [2, 1]
    assert "rate=0.2" in groups[0].label and "n=2" in groups[0].label and "rate=0.4" in groups[1].label
    curve = mean_curve(groups[0])
    assert curve.mean == pytest.approx([60.0, 80.0]) and curve.std == pytest.approx([10 * 2**0.5] * 2)  # n - 1
    assert curve.count == [2, 2]
    assert mean_curve(groups[1]).std == [0.0, 0.0]


def test_phases_found_on_a_double_descent_curve():
    #             light       critical     sweet             collapsed
    curve = [0.70, 0.70, 0.69, 0.62, 0.58, 0.66, 0.80, 0.83, 0.81, 0.50, 0.20]
    phases = phases_for_chart(rounds_from(curve))
    assert [p.name for p in phases] == ["light", "critical", "sweet", "collapsed"]
    by_name = {p.name: p for p in phases}
    dip, peak = 1 - 0.8**4, 1 - 0.8**7
    assert by_name["critical"].first <= dip <= by_name["critical"].last
    assert by_name["sweet"].first <= peak <= by_name["sweet"].last
    assert by_name["collapsed"].last == pytest.approx(1 - 0.8**10)
    assert all(a.last <= b.first for a, b in zip(phases, phases[1:]))  # in order, touching


def test_no_phases_on_a_monotone_curve_or_too_few_rounds():
    assert phases_for_chart(rounds_from([0.9, 0.88, 0.85, 0.8, 0.7, 0.5])) == []
    assert phases_for_chart(rounds_from([0.7, 0.6, 0.8])) == []


def test_follower_reads_only_complete_new_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    follower = EventFollower(path)
    assert follower.read_new() == []
    first = Message(run_id="r", time=1.0, level="info", text="one").to_json()
    second = Message(run_id="r", time=2.0, level="info", text="two").to_json()
    path.write_text(first + "\n" + second[:10], encoding="utf-8")
    assert [e.text for e in follower.read_new()] == ["one"]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(second[10:] + "\nnot json\n")
    assert [e.text for e in follower.read_new()] == ["two"]
    assert follower.skipped == 1 and follower.read_new() == []


def started(resumed: int = -1) -> RunStarted:
    return RunStarted(run_id="r", time=0.0, name="demo", preset=None, config={}, device="cpu", rounds=2, epochs=2,
                      resumed_from_round=resumed)


def test_run_view_folds_events_and_a_resume():
    view = RunView()
    view.apply(started())
    view.apply(RoundStarted(run_id="r", time=0.0, round=0, rounds=2, sparsity=0.0, remaining=10, epochs=2))
    view.apply(EpochEnded(run_id="r", time=0.0, round=0, rounds=2, epoch=1, epochs=2, train_loss=1.0, train_acc=0.5,
                          test_loss=1.0, test_acc=0.4, lr=0.1, seconds=1.0, samples_per_s=10.0))
    assert [p.test_acc for p in view.epochs] == [0.4]
    for index in (0, 1):
        view.apply(RoundEnded(run_id="r", time=0.0, round=index, rounds=2, result=rounds_from([0.5, 0.6])[index]))
    view.apply(RunEnded(run_id="r", time=0.0, status="stopped"))
    assert view.status == "stopped" and [r["round"] for r in view.results] == [0, 1]
    view.apply(started(resumed=0))  # the checkpoint of round 0: round 1 is trained again
    assert view.status == "running" and [r["round"] for r in view.results] == [0]
    assert any("resumed after round 0" in text for _, text in view.log)


def test_progress_text_names_round_epoch_and_accuracies():
    view = RunView()
    view.apply(started())
    view.apply(RoundEnded(run_id="r", time=0.0, round=0, rounds=2, result=rounds_from([0.5])[0]))
    text = progress_text(view, "running", "live").plain
    assert "RUNNING" in text and "round 0/2" in text and "dense 50.0%" in text and "ETA" in text


def test_form_values_validated_by_the_config_model():
    config, errors = build_config("smoke", {"noise.rate": "0.4", "train.epochs": "3"}, "model.width=0.5")
    assert errors == {} and config.noise.rate == 0.4 and config.train.epochs == 3 and config.model.width == 0.5
    _, errors = build_config("smoke", {"noise.rate": "1.5", "runtime.seed": "x"}, "")
    assert "less than or equal to 1" in errors["noise.rate"] and "integer" in errors["runtime.seed"]
    _, errors = build_config("smoke", {}, "train.epoch=3")
    assert "unknown field 'epoch'" in errors[EXTRA]
    _, errors = build_config("smoke", {"data.name": "digits", "model.name": "resnet18"}, "")
    assert "image data" in errors["model.name"] and GENERAL not in errors
    config, errors = build_config("smoke", {"prune.schedule": "oneshot", "noise.kind": "random"}, "")
    assert errors == {} and config.prune.schedule == "oneshot" and config.noise.kind == "random"


def test_history_rows_filter_and_sort():
    rows = [{"id": "1", "name": "alpha", "status": "finished", "dataset": "digits", "model": "mlp",
             "noise": "symmetric 20%", "best": 0.5},
            {"id": "2", "name": "beta", "status": "failed", "dataset": "mnist", "model": "lenet300_100",
             "noise": "symmetric 40%", "best": None},
            {"id": "3", "name": "gamma", "status": "finished", "dataset": "mnist", "model": "mlp",
             "noise": "pairflip 20%", "best": 0.7}]
    assert [r["id"] for r in filter_rows(rows, "mnist")] == ["2", "3"]
    assert [r["id"] for r in filter_rows(rows, "finished 20%")] == ["1", "3"]
    assert [r["id"] for r in sort_rows(rows, "best", reverse=True)] == ["3", "1", "2"]
    assert [r["id"] for r in sort_rows(rows, "best", reverse=False)] == ["1", "3", "2"]


def test_in_app_runs_leave_a_core_for_the_ui_unless_threads_are_given(smoke_config):
    from sdd_tui.live import leave_a_core_for_the_ui

    config = smoke_config()
    unset = config.model_copy(update={"runtime": config.runtime.model_copy(update={"threads": None})})
    assert leave_a_core_for_the_ui(unset, cores=2).runtime.threads == 1
    assert leave_a_core_for_the_ui(unset, cores=16).runtime.threads == 15
    assert leave_a_core_for_the_ui(unset, cores=1).runtime.threads == 1
    assert leave_a_core_for_the_ui(smoke_config("runtime.threads=2"), cores=2).runtime.threads == 2
