"""One rule for seed groups and one statistic: compare screen, `plot` and sweeps agree."""

from __future__ import annotations

import pytest

from sdd_tui.core.analysis.figures import group_by_seed, group_curve
from sdd_tui.core.history.grouping import NOT_THE_EXPERIMENT, differing_fields, group_by_setting, mean_std
from sdd_tui.core.sweeps.sweep import aggregate_rounds, group_by_point
from sdd_tui.widgets.series import group_by_setting as compare_groups, mean_curve


def config(rate: float, seed: int, **runtime) -> dict:
    return {"name": f"demo seed={seed}", "noise": {"kind": "symmetric", "rate": rate, "seed": None},
            "train": {"epochs": 2, "lr": 0.1}, "model": {"name": "mlp", "hidden": [300, 100]},
            "runtime": {"seed": seed, "device": "cpu", "threads": 1, "fast": True, "compile": False,
                        "checkpoint_every": None, "checkpoint_minutes": 5, **runtime}}


def run(run_id: str, cfg: dict, accuracies: list[float]) -> dict:
    rounds = [{"round": i, "sparsity": 1 - 0.8**i, "test_acc": a} for i, a in enumerate(accuracies)]
    return {"id": run_id, "name": cfg["name"], "config": cfg, "rounds": rounds}


RUNS = [
    run("a", config(0.2, 0), [0.50, 0.60]),
    run("b", config(0.2, 1, device="cuda:1", threads=8, fast=False, compile=True, checkpoint_minutes=1), [0.70, 0.80]),
    run("c", config(0.4, 0), [0.40, 0.45]),
    run("d", config(0.2, 2, checkpoint_every=3), [0.60, 0.70]),
]


def test_how_a_run_was_run_does_not_split_a_group_but_a_setting_does():
    groups = group_by_setting(RUNS)
    assert [[r["id"] for r in g] for g in groups] == [["a", "b", "d"], ["c"]]
    assert differing_fields([r["config"] for r in RUNS]) == ["noise.rate"]
    assert {"runtime.seed", "runtime.device", "runtime.threads", "runtime.fast", "runtime.compile",
            "runtime.checkpoint_every", "runtime.checkpoint_minutes", "name"} <= NOT_THE_EXPERIMENT


def test_compare_screen_plot_and_sweeps_form_the_same_groups():
    partition = [["a", "b", "d"], ["c"]]
    assert [[r.id for r in g.records] for g in compare_groups(RUNS)] == partition
    assert [[r.id for r in g.records] for g in group_by_seed(RUNS)] == partition
    members = [{"run_id": r["id"], "config": r["config"], "point": {"noise.rate": str(r["config"]["noise"]["rate"])}}
               for r in RUNS]
    assert [[m["run_id"] for m in group] for _, group in group_by_point(members)] == partition


def test_compare_screen_plot_and_sweeps_use_the_sample_std():
    values = [0.50, 0.70, 0.60]  # round 0 of a, b, d
    mean, std = mean_std(values)
    assert std == pytest.approx(0.1)  # sample std; the population std would be 0.0816
    compare = mean_curve(compare_groups(RUNS)[0], scale=1.0)
    figure = group_curve(group_by_seed(RUNS)[0], "test_acc")
    sweep = aggregate_rounds([r["rounds"] for r in RUNS if r["id"] != "c"], metrics=("test_acc",))
    assert compare.std[0] == pytest.approx(std) and figure.std[0] == pytest.approx(std)
    assert sweep[0]["test_acc_std"] == pytest.approx(std) and compare.mean[0] == pytest.approx(mean)


def test_compare_labels_name_only_the_differing_settings_and_every_n():
    labels = [g.label for g in compare_groups(RUNS)]
    assert labels == ["rate=0.2 (n=3 runs, 3 seeds)", "rate=0.4 (n=1 run, 1 seed)"]
    twice = [run(f"t{i}", config(0.2, i % 3), [0.5]) for i in range(6)]  # three seeds, each run twice
    assert [g.label for g in compare_groups(twice)] == ["demo seed=0 (n=6 runs, 3 seeds)"]
    clash = [run("x", {**config(0.2, 0), "train": {"epochs": 2, "lr": 0.1}, "retrain": {"lr": 0.01}}, [0.5]),
             run("y", {**config(0.2, 0), "train": {"epochs": 2, "lr": 0.2}, "retrain": {"lr": 0.02}}, [0.5])]
    assert [g.label for g in compare_groups(clash)] == ["retrain.lr=0.01 train.lr=0.1 (n=1 run, 1 seed)",
                                                        "retrain.lr=0.02 train.lr=0.2 (n=1 run, 1 seed)"]
    long_value = [run("p", config(0.2, 0), [0.5]), run("q", {**config(0.2, 0), "model": {"name": "mlp",
                  "hidden": [300, 100, 100, 100, 100, 100, 100, 100]}}, [0.5])]
    assert "[300, 100, 100, 100, 100, 100, 100, 100]" in compare_groups(long_value)[1].label  # never cut
    assert [g.label for g in compare_groups(RUNS[:1])] == ["demo seed=0 (n=1 run, 1 seed)"]  # one group: its name
