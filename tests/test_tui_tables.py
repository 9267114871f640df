"""Telling runs apart: id prefixes, seed, rounds, noise and mode columns, elided names, the compare legend;
at 80x24 and 200x60."""

from __future__ import annotations

import time

import pytest
from sdd_test_helpers import add_run, run_record
from textual.widgets import DataTable

from sdd_tui.app import SddApp
from sdd_tui.core.format import noise_short, rounds_text, short_ids
from sdd_tui.core.history.run_index import summary
from sdd_tui.core.history.store import Store
from sdd_tui.screens.compare import CompareScreen
from sdd_tui.screens.history import HistoryScreen
from sdd_tui.widgets.charts import CompareChart
from sdd_tui.widgets.runs_table import RunsTable
from sdd_tui.widgets.tables import CELL_PADDING, elide

LONG_NAME = "a very long experiment name that goes on and on and on"


def stored_run(store: Store, run_id: str, name: str, seed: int, rate: float, mode: str, done: int) -> None:
    config = {"name": name, "noise": {"kind": "symmetric", "rate": rate}, "prune": {"rounds": 30},
              "retrain": {"mode": mode}, "runtime": {"seed": seed}, "data": {"name": "digits"},
              "model": {"name": "mlp"}}
    record = run_record(run_id, name=name, config=config, status="running", started=time.time(), pid=None, host=None)
    add_run(store, record, [{"round": index, "sparsity": 1 - 0.8**index, "test_acc": 0.5 + index / 100}
                            for index in range(done + 1)])
    store.end_run(run_id, status="finished", ended=time.time(), error="")  # as a run's RunEnded does


def look_alike_runs(home) -> Store:
    store = Store(home)
    stored_run(store, "20261130-004931-6677", LONG_NAME, 0, 0.4, "rewind", 30)
    stored_run(store, "20261130-004914-8230", "smoke", 1, 0.2, "rewind", 12)
    stored_run(store, "20261130-004914-8231", "smoke", 2, 0.2, "finetune", 3)
    stored_run(store, "20261201-120000-aaaa", "smoke", 1, 0.2, "lr_rewind", 0)
    return store


def test_shortest_unique_prefix_keeps_four_characters_after_the_date():
    ids = ["20261130-004931-6677", "20261130-004914-8230", "20261130-004914-8231", "20261201-120000-aaaa"]
    short = short_ids(ids)
    assert short == {"20261130-004931-6677": "20261130-00493", "20261130-004914-8230": "20261130-004914-8230",
                     "20261130-004914-8231": "20261130-004914-8231", "20261201-120000-aaaa": "20261201-1200"}
    assert short_ids(["20261130-004931-6677", "20261201-120000-aaaa"]) == {
        "20261130-004931-6677": "20261130-0049", "20261201-120000-aaaa": "20261201-1200"}
    for run_id, prefix in short.items():  # each prefix names one run only
        assert [i for i in ids if i.startswith(prefix)] == [run_id]


def test_rounds_are_counted_after_the_dense_one_and_cells_are_short():
    record = {"id": "r", "config": {"prune": {"rounds": 30}, "noise": {"kind": "pairflip", "rate": 0.2}},
              "rounds": [{"round": r, "sparsity": 0.0, "test_acc": 0.5} for r in range(13)]}
    assert rounds_text(summary(record)) == "12/30"
    assert rounds_text(summary({"id": "r", "config": {"prune": {"rounds": 30}}})) == "0/30"
    assert noise_short("symmetric", 0.4) == "40%" and noise_short("pairflip", 0.2) == "pair 20%"
    assert noise_short("none", 0.0) == "none"
    assert elide("abcdef", 4) == "abc…" and elide("abc", 4) == "abc"


def table_view(table) -> tuple[list[str], list[int], list[list[str]]]:
    """(column titles, their widths on screen with padding, each row's cells) of the home screen's
    DataTable or the history's RunsTable."""
    if isinstance(table, RunsTable):
        return ([title.rstrip(" ▲▼") for title in table.columns], [width + CELL_PADDING for width in table.widths],
                [table.row_text(i) for i in range(table.row_count)])
    return ([str(c.label) for c in table.ordered_columns], [c.get_render_width(table) for c in table.ordered_columns],
            [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)])


async def check_runs_table(pilot, table, width: int) -> None:
    await pilot.pause()
    columns, widths, rows = table_view(table)
    for wanted in ("id", "name", "status", "seed", "rounds", "noise", "mode", "best", "dense"):
        assert wanted in columns
    right_edge = sum(widths[: columns.index("best") + 1])
    assert right_edge <= width - 1  # a long name never pushes the columns up to best off screen (nor the scrollbar)
    text = "\n".join("  ".join(row) for row in [columns, *rows])
    assert "20261130-00493 " in text and "20261201-1200 " in text and "20261130-004914-8231" in text
    assert "30/30" in text and "12/30" in text and "0/30" in text
    assert "finetune" in text and "lr_rewind" in text and "40%" in text
    names = [row[columns.index("name")] for row in rows]
    long = next(n for n in names if n.startswith("a "))
    assert long.endswith("…") and len(long) < len(LONG_NAME)
    if isinstance(table, RunsTable):  # what is drawn: the header, then each row's cells in their columns
        drawn = [table.render_line(y).text for y in range(len(rows) + 1)]
        titles = [t for t in drawn[0].split() if t not in "▲▼"]  # the sorted column's mark aside
        assert titles[: columns.index("best") + 1] == columns[: columns.index("best") + 1]
        for line, row in zip(drawn[1:], rows):
            assert line.startswith(" " + row[0]) and row[columns.index("name")] in line
            assert f" {row[columns.index('best')]} " in line  # whole: the table is as wide as the screen
            assert len(line) == table.scrollable_content_region.width  # cut to the table, not wrapped


@pytest.mark.slow
async def test_home_and_history_tell_look_alike_runs_apart_at_80x24_and_200x60(home):
    look_alike_runs(home)
    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await check_runs_table(pilot, app.screen.query_one("#runs", DataTable), 80)
        await pilot.press("h")
        assert isinstance(app.screen, HistoryScreen)
        await check_runs_table(pilot, app.screen.query_one("#history", RunsTable), 80)
        await pilot.resize_terminal(200, 60)
        await check_runs_table(pilot, app.screen.query_one("#history", RunsTable), 200)
        wide = [app.screen.query_one("#history", RunsTable).row_text(i)[1] for i in range(4)]
        assert any(len(name) > 30 for name in wide)  # wide: more of the name
        await pilot.resize_terminal(80, 24)  # and back: the columns shrink again
        await check_runs_table(pilot, app.screen.query_one("#history", RunsTable), 80)
        await pilot.press("escape")
        await check_runs_table(pilot, app.screen.query_one("#runs", DataTable), 80)


@pytest.mark.slow
async def test_compare_legend_names_the_differing_setting_and_n_at_80x24_and_200x60(home):
    store = look_alike_runs(home)
    stored_run(store, "20261202-090000-bbbb", "smoke", 3, 0.2, "rewind", 5)  # a seed of the 12/30 run's setting
    ids = ["20261130-004931-6677", "20261130-004914-8230", "20261202-090000-bbbb"]
    for size in ((80, 24), (200, 60)):
        app = SddApp(store=Store(home), blink=False)
        async with app.run_test(size=size) as pilot:
            app.push_screen(CompareScreen(ids))
            await pilot.pause()
            chart = app.screen.query_one(CompareChart)
            text = chart.render().plain
            assert "rate=0.4 (n=1 run, 1 seed)" in text and "rate=0.2 (n=2 runs, 2 seeds)" in text and "~" not in text, size
            assert "seed=" not in text and "name=" not in text  # seeds and names are not settings
