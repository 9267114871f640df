"""Seed groups, Figure 1 and the flatness figure on hand-made records (no training)."""

from __future__ import annotations

import struct

import pytest
from sdd_test_helpers import run_record
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.analysis.figures import figure_one, group_by_seed, group_curve, interpolation_figure, save_figure
from sdd_tui.core.analysis.sparsity_axis import sparsity_x
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import Store
from tests.test_analysis import DD_TEST, DD_TRAIN


def record(run_id, seed=0, rate=0.4, shift=0.0, name="digits-noise40", reinit=False):
    rounds = []
    for i, (test, train) in enumerate(zip(DD_TEST, DD_TRAIN)):
        result = {"round": i, "sparsity": 1 - 0.8**i, "test_acc": test + shift, "best_test_acc": test + shift,
                  "train_acc": train, "learning_distance": 10 + i, "seconds": 1.0}
        if reinit and i:
            result["reinit"] = {"test_acc": test - 0.05, "train_acc": train, "learning_distance": 5 + i}
        rounds.append(result)
    config = {"name": name, "noise": {"kind": "symmetric", "rate": rate}, "model": {"name": "mlp"},
              "data": {"name": "digits"}, "retrain": {"mode": "rewind"}, "prune": {"rounds": len(DD_TEST) - 1},
              "runtime": {"seed": seed, "device": "cpu"}}
    return run_record(run_id, name=name, config=config, rounds=rounds, started=seed)


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def test_runs_differing_only_by_seed_form_one_group():
    records = [record("a", 0), record("b", 1, name="other name"), record("c", 0, rate=0.2), record("d", 2)]
    groups = group_by_seed(records)
    assert [[r.id for r in g.records] for g in groups] == [["a", "b", "d"], ["c"]]
    assert groups[0].seeds == [0, 1, 2] and groups[0].label == "digits-noise40 (3 seeds: 0, 1, 2)"
    members = [record("s0", 0, name="sweep noise.rate=0.4 seed=0"), record("s1", 1, name="sweep noise.rate=0.4 seed=1")]
    assert group_by_seed(members)[0].label == "sweep noise.rate=0.4 (2 seeds: 0, 1)"  # no single seed in the name


def test_group_curve_is_mean_and_sample_std_per_round():
    group = group_by_seed([record("a", 0, shift=-0.01), record("b", 1, shift=0.01)])[0]
    curve = group_curve(group, "test_acc")
    assert curve.rounds == list(range(len(DD_TEST)))
    assert curve.mean[9] == pytest.approx(DD_TEST[9])
    assert curve.std[9] == pytest.approx(0.02 / 2**0.5)
    assert group_curve(group, "test_acc", "reinit").rounds == []


@pytest.mark.slow
def test_figure_one_has_test_and_train_panels_on_a_sparsity_axis(tmp_path):
    records = [record("a", 0, reinit=True), record("b", 1, shift=0.01, reinit=True)]
    figure = figure_one(records)
    top, bottom = figure.axes
    assert top.get_ylabel() == "test accuracy (%)"
    assert bottom.get_ylabel().startswith("train accuracy")
    assert bottom.get_xlabel().startswith("sparsity")
    assert top.get_xlim()[0] < 0 < sparsity_x(0.5) < top.get_xlim()[1]  # sparser to the right, dense in view
    ticks = [t.get_text() for t in bottom.get_xticklabels()]
    assert ticks == ["0%", "20%", "50%", "80%", "90%", "95%", "98%", "99%"]  # the last round is 98.85% sparse
    assert [line.get_label() for line in top.get_lines()[:2]] == ["digits-noise40 (2 seeds: 0, 1)",
                                                                   "digits-noise40 (2 seeds: 0, 1), reinit"]
    assert {"light", "critical", "sweet", "collapsed"} <= {t.get_text() for t in top.texts}
    path = save_figure(figure, tmp_path / "fig.png")
    assert png_size(path) == (800, 700) and path.stat().st_size > 10_000


def test_other_metrics_draw_one_panel():
    figure = figure_one([record("a")], metric="learning_distance")
    assert len(figure.axes) == 1 and figure.axes[0].get_ylabel().startswith("learning distance")


def test_flat_single_run_says_there_is_no_double_descent():
    flat = record("a")
    for r in flat["rounds"]:
        r["test_acc"] = 0.7
    assert figure_one([flat]).axes[0].get_title().startswith("no double descent: flat")


def test_figure_errors_are_user_errors(tmp_path):
    with pytest.raises(SddError, match="must end in .png, .pdf, .svg"):
        save_figure(figure_one([record("a")]), tmp_path / "fig.jpg")
    with pytest.raises(SddError, match="no re-dense analysis"):
        interpolation_figure(record("a"))


def test_interpolation_figure_draws_loss_accuracy_and_loss_plots():
    line = [{"alpha": a / 4, "train_loss": 1 - a / 8, "test_loss": 2.0, "train_acc": 0.5, "test_acc": 0.6}
            for a in range(5)]
    plot = [{"beta": b / 2, "train_loss": b * b, "test_loss": 1.0, "train_acc": 0.5, "test_acc": 0.6}
            for b in range(-2, 3)]
    analysed = record("a")
    analysed["analyses"] = {"redense": {"5": {"sparsity": 0.67, "interpolation": line,
                                              "filter_normalized": {"sparse": plot, "redense": plot}}}}
    figure = interpolation_figure(analysed)
    assert [ax.get_ylabel() for ax in figure.axes] == ["loss", "accuracy (%)", "train loss"]
    assert len(figure.axes[0].get_lines()) == 2 and len(figure.axes[2].get_lines()) == 2


@pytest.mark.slow
def test_plot_command_writes_png_pdf_and_svg(tmp_path):
    store = Store(tmp_path)
    for item in (record("run-a", 0), record("run-b", 1)):
        store.create_run(item)
    runner = CliRunner()
    for suffix in ("png", "pdf", "svg"):
        out = tmp_path / f"fig.{suffix}"
        result = runner.invoke(app, ["plot", "run-a", "run-b", "-o", str(out), "--home", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 1000
    assert png_size(tmp_path / "fig.png") == (800, 700)
    bad = runner.invoke(app, ["plot", "run-a", "-o", str(tmp_path / "x.png"), "--metric", "nope",
                              "--home", str(tmp_path)])
    assert bad.exit_code == 2 and "--metric 'nope'" in bad.output
    none = runner.invoke(app, ["plot", "-o", str(tmp_path / "x.png"), "--home", str(tmp_path)])
    assert none.exit_code == 2 and "give one or more run ids" in none.output
