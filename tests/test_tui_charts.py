"""Charts that read like the exported figure, and the finished dashboard's phases and table of rounds."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console
from textual.widgets import Static
from typer.testing import CliRunner

from sdd_tui.app import SddApp
from sdd_tui.cli import app as cli_app
from sdd_tui.core.analysis.phases import detect_phases
from sdd_tui.core.format import pct
from sdd_tui.core.history.store import Store
from sdd_tui.runview import EpochPoint
from sdd_tui.widgets.charts import EpochChart, SddChart
from sdd_tui.widgets.panels import ProgressPanel
from sdd_tui.widgets.series import nice_ticks
from tests.test_analysis import DD_TEST, DD_TRAIN

RUN = "20261130-004931-6677"
SIZES = ((80, 24), (200, 60))


def double_descent_run(home) -> list[dict]:
    store = Store(home)
    store.create_run({"id": RUN, "name": "dd", "config": {"prune": {"rounds": len(DD_TEST) - 1},
                      "train": {"epochs": 3}}, "status": "finished", "started": time.time(), "rounds": [],
                      "pid": None, "host": None})
    rounds = []
    for index, (test, train) in enumerate(zip(DD_TEST, DD_TRAIN)):
        result = {"round": index, "sparsity": 1 - 0.8**index, "remaining": 1000, "test_acc": test,
                  "best_test_acc": test + 0.02, "train_acc": train, "noisy_memorized": train,
                  "learning_distance": 10.0 + index, "seconds": 1.0}
        store.add_round(RUN, result)
        rounds.append(result)
    return rounds


def y_ticks(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"^\s*(-?\d+(?:\.\d+)?)\s*[┤├]", text, flags=re.M)]


def test_nice_ticks_are_round_numbers_covering_the_range():
    ticks = nice_ticks(48.0, 97.0, 7)
    assert ticks == [40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
    assert nice_ticks(32.8, 46.9, 6) == [30.0, 35.0, 40.0, 45.0, 50.0]
    assert nice_ticks(1, 76, 6, integer=True) == [0.0, 20.0, 40.0, 60.0, 80.0]
    assert nice_ticks(1, 3, 10, integer=True) == [1.0, 2.0, 3.0]  # never half an epoch


async def chart_of_the_run(app, pilot, wait_for) -> str:
    """Open RUN's dashboard and return its accuracy chart's text once every round is drawn."""
    app.open_run(RUN)
    await pilot.pause()
    chart = app.screen.query_one(SddChart)
    await wait_for(pilot, lambda: len(chart.rounds) >= len(DD_TEST), "every round on the chart")
    return chart.render().plain


@pytest.mark.slow
async def test_the_sparsity_chart_reads_like_the_exported_figure(home, wait_for):
    double_descent_run(home)
    for size in SIZES:
        app = SddApp(store=Store(home), blink=False)
        async with app.run_test(size=size) as pilot:
            text = await chart_of_the_run(app, pilot, wait_for)
            lines = text.splitlines()
            for legend in ("⢕⢕ test", "++ best test", "•• train", "── dense"):  # a marker each, and the dense line
                assert legend in text, (size, legend)
            top = next(i for i, line in enumerate(lines) if "┌" in line)
            above, inside = "\n".join(lines[:top]), "\n".join(lines[top:])
            names = ("crit", "sweet") if size[0] < 100 else ("critical", "sweet")
            for name in names:  # phase names above the plot area, never over the curves
                assert name in above and name not in inside, (size, name)
            ticks = y_ticks(text)
            step = ticks[0] - ticks[1]
            assert len(ticks) >= 3 and all(t == int(t) and t % 5 == 0 for t in ticks), (size, ticks)
            assert all(abs((a - b) - step) < 1e-9 for a, b in zip(ticks, ticks[1:])), ticks


async def test_the_chart_labels_the_sparsity_ticks_of_the_exported_figure(home, wait_for):
    from sdd_tui.core.analysis.figures import figure_one

    double_descent_run(home)
    figure = figure_one([Store(home).get_run(RUN)])
    exported = [t.get_text() for t in figure.axes[-1].get_xticklabels()]
    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=(200, 60)) as pilot:
        lines = (await chart_of_the_run(app, pilot, wait_for)).splitlines()
    axis = lines[next(i for i, line in enumerate(lines) if "└" in line) + 1]
    assert exported[-1] == "99%" and axis.split() == exported


@pytest.mark.slow
async def test_a_branch_is_drawn_dashed_with_its_own_legend(home, wait_for):
    double_descent_run(home)
    store = Store(home)
    for result in store.get_run(RUN)["rounds"][1:]:
        store.add_round(RUN, {**result, "reinit": {"test_acc": result["test_acc"] - 0.05, "train_acc": 0.5},
                              "random_prune": {"test_acc": result["test_acc"] - 0.1, "train_acc": 0.4}})
    app = SddApp(store=store, blink=False)
    async with app.run_test(size=(200, 60)) as pilot:
        text = await chart_of_the_run(app, pilot, wait_for)
        assert "╌╌ reinit test" in text and "┈┈ random prune test" in text
        assert "⢕⢕ test" in text and "── dense" in text


async def test_epoch_ticks_are_whole_epochs(home):
    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        chart = EpochChart()
        chart.styles.height, chart.styles.width = 16, 70
        await app.screen.mount(chart, before=0)
        await pilot.pause()
        chart.set_points([EpochPoint(e, 1.0 / e, 0.9, 0.5 + e / 100) for e in range(1, 8)], 2)
        text = chart.render().plain
        axis = text.splitlines()[[i for i, line in enumerate(text.splitlines()) if "└" in line][0] + 1]
        labels = axis.split()
        assert labels and all(label.isdigit() for label in labels), axis
        assert y_ticks(text) and all(t == int(t) for t in y_ticks(text))


def table_rows(text: str) -> list[tuple[str, ...]]:
    """Round, sparsity and test accuracy of each row of the dashboard's Rich table."""
    return [tuple(c.strip() for c in row.split("│")[1:4]) for row in text.splitlines()
            if re.match(r"^\s*│\s*\d+\s*│", row)]


def cli_rows(text: str) -> list[tuple[str, ...]]:
    """The same three cells of each row of `runs show`'s plain table (the lines after 'rounds')."""
    lines = text.splitlines()
    table = lines[lines.index("rounds") + 2:]
    return [tuple(row.split()[:3]) for row in table if re.match(r"^\s*\d+\s+\d", row)]


@pytest.mark.slow
async def test_the_finished_dashboard_shows_the_phases_and_the_rounds_of_runs_show(home):
    rounds = double_descent_run(home)
    phases = detect_phases(rounds)
    assert phases["double_descent"]
    shown = None
    for size in SIZES:
        app = SddApp(store=Store(home), blink=False)
        async with app.run_test(size=size) as pilot:
            app.open_run(RUN)
            await pilot.pause(0.5)
            dashboard = app.screen
            panel = str(dashboard.query_one(ProgressPanel).render())
            for key in ("dip", "peak", "collapse"):
                point = phases[key]
                assert f"{key} {pct(point['test_acc'])} at {pct(point['sparsity'], 2)} r{point['round']}" in panel
            await pilot.press("t")
            assert dashboard.has_class("-table")
            console = Console(file=io.StringIO(), width=size[0])
            console.print(dashboard.query_one("#round-table", Static).content)
            shown = table_rows(console.file.getvalue())
            await pilot.press("end")  # the table scrolls
            await pilot.press("t")
            assert not dashboard.has_class("-table")
    runs_show = cli_rows(CliRunner().invoke(cli_app, ["runs", "show", RUN, "--home", str(home)]).output)
    assert shown == runs_show and len(shown) == len(DD_TEST)
