"""80x24 as a first-class screen: snapshots (as text) at 80x24, 60x20 and 200x60 of the dashboard mid-run,
the forms with errors, home and history; the charts' order, legend and size limit; keys that mean one
thing; the palette; the theme kept."""

from __future__ import annotations

import json
import re
import time

import pytest
from textual.widgets import Checkbox, Input, Static

from sdd_tui.app import SddApp
from sdd_tui.core.history.records import RunRecord
from sdd_tui.core.history.store import Store
from sdd_tui.runview import RunView
from sdd_tui.screens.dashboard import DashboardScreen
from sdd_tui.screens.help import key_sections
from sdd_tui.screens.history import HistoryScreen
from sdd_tui.screens.new_experiment import NewExperimentScreen
from sdd_tui.screens.new_sweep import NewSweepScreen
from sdd_tui.screens.sweeps import SweepsScreen
from sdd_tui.widgets.charts import CompareChart, SddChart
from sdd_tui.widgets.panels import progress_text
from sdd_tui.widgets.runs_table import RunsTable
from sdd_tui.widgets.series import RunGroup
from tests.screens_fixtures import DIGITS_RUN, screen_text, write_digits_run

SIZES = ((80, 24), (60, 20), (200, 60))
# Each size its own test: 80x24 in the quick run (`-m "not slow"`), the others only in the whole run (an app
# start and a form or dashboard at each size: seconds on a 2-core machine).
EVERY_SIZE = pytest.mark.parametrize("width, height", [SIZES[0], *(pytest.param(*size, marks=pytest.mark.slow)
                                                                    for size in SIZES[1:])],
                                     ids=[f"{w}x{h}" for w, h in SIZES])
BRAILLE = re.compile("[\u2801-\u28ff]")  # the test curve's marker (U+2800 is a blank braille cell)


def make_app(home) -> SddApp:
    return SddApp(store=Store(home), blink=False)


def plot_rows(text: str) -> list[str]:
    """The plot area of the first chart on screen: the lines inside its frame (┌ to └, in its columns)."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    left, right = lines[top].index("┌"), lines[top].index("┐", lines[top].index("┌"))
    bottom = next(i for i in range(top + 1, len(lines)) if lines[i][left:left + 1] == "└")
    return [line[left + 1:right] for line in lines[top + 1:bottom]]


@EVERY_SIZE
async def test_dashboard_mid_run_shows_every_series_a_one_line_header_and_the_system_line(home, wait_for, width,
                                                                                         height):
    write_digits_run(home)  # recorded by this process: running, watched
    app = make_app(home)
    async with app.run_test(size=(width, height)) as pilot:
        app.open_run(DIGITS_RUN)
        await pilot.pause()
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        chart = dashboard.query_one(SddChart)
        await wait_for(pilot, lambda: len(chart.rounds) == 6 and dashboard.system, "six rounds and the system")
        await pilot.pause(0.6)  # the header's next redraw, at its width
        text = screen_text(app)
        lines = text.splitlines()
        header = next(i for i, line in enumerate(lines) if "RUNNING" in line)
        assert DIGITS_RUN in lines[header] and "on cpu" in lines[header], (width, lines[header])
        assert lines[header + 1].lstrip().startswith("round 5/5"), (width, lines[header + 1])  # not wrapped
        assert "samples/s" in lines[header + 3], (width, lines[header + 3])  # the system line, on screen
        assert "test" in text and "best test" in text and "train" in text and "dense" in text
        inside = "\n".join(plot_rows(text))
        for mark, series in ((BRAILLE, "test"), (re.compile(r"\+"), "best test"), (re.compile("•"), "train"),
                             (re.compile("─"), "dense")):
            assert mark.search(inside), (width, height, series, inside)
        assert "best test" not in inside and "dense" not in inside  # the legend is outside the plot area
        assert len(plot_rows(text)) >= 6, (width, height)  # one readable chart, even at 60x20
        assert "too small" not in text


async def test_a_chart_without_room_says_so_instead_of_overprinting(home, wait_for):
    write_digits_run(home)
    app = make_app(home)
    async with app.run_test(size=(80, 12)) as pilot:
        app.open_run(DIGITS_RUN)
        await pilot.pause()
        chart = app.screen.query_one(SddChart)
        await wait_for(pilot, lambda: len(chart.rounds) == 6, "six rounds")
        text = chart.render().plain
        size = f"{chart.size.width}x{chart.size.height}"
        assert text.startswith("accuracy % vs sparsity: too small: " + size + ", needs 30x"), text
        assert "┌" not in text


@EVERY_SIZE
async def test_the_form_checks_every_field_at_once_and_goes_to_the_first_error(home, width, height):
    app = make_app(home)
    async with app.run_test(size=(width, height)) as pilot:
        app.push_screen(NewExperimentScreen("digits-noise40"))
        await pilot.pause()
        form = app.screen
        form.query_one("#input-noise-rate", Input).value = "2"
        form.query_one("#input-train-epochs", Input).value = "0"
        form.query_one("#input-extra", Input).value = "nosuch.x=1"
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert app.screen is form and app.live is None  # refused: the form stays
        errors = [w.id for w in form.query(".field-help.error")]
        assert errors == ["help-noise-rate", "help-train-epochs", "help-extra"], errors
        assert app.focused is form.query_one("#input-noise-rate", Input)
        assert form.query_one("#help-noise-rate").region.bottom <= height  # scrolled to it
        assert "Input should be less" in screen_text(app)  # the error on screen, in place of the help
        assert list(app._notifications)[-1].message == "fix 3 fields: noise rate, epochs, more settings"
    assert not (home / "runs").exists()


@pytest.mark.slow
async def test_a_start_that_cannot_begin_keeps_the_form(home):
    """Another run trains here, so the new one goes to a background process; where that process cannot be
    started (no room for its log, say), the form stays with its values and one line says why."""
    class Training:  # another run trains in this app
        running, run_id = True, "20261201-000000-beef"

    def no_room(command, log):
        raise OSError(28, "No space left on device")

    app = SddApp(store=Store(home), blink=False, spawn_with=no_room)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(NewExperimentScreen("smoke"))
        await pilot.pause()
        form = app.screen
        form.query_one("#input-name", Input).value = "kept"
        app.live = Training()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form and form.query_one("#input-name", Input).value == "kept"
        assert any("could not start" in n.message and "No space left" in n.message for n in app._notifications)
        app.live = None


@EVERY_SIZE
async def test_the_sweep_form_shows_a_bad_seeds_value_and_a_bad_grid_together(home, width, height):
    app = make_app(home)
    async with app.run_test(size=(width, height)) as pilot:
        app.push_screen(NewSweepScreen("smoke"))
        await pilot.pause()
        form = app.screen
        form.query_one("#input-seeds", Input).value = "x-y"
        form.query_one("#input-grid", Input).value = "noise.rate=2"
        form.query_one("#input-set", Input).value = "nosuch.x=1"
        pack = form.query_one("#input-pack", Checkbox)
        assert "off" in str(pack.label)
        pack.value = True
        await pilot.pause()
        assert "on" in str(pack.label)  # the state in words, not only the box
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert [w.id for w in form.query(".field-help.error")] == ["help-seeds", "help-grid", "help-set"]
        assert app.focused is form.query_one("#input-seeds", Input)
        assert list(app._notifications)[-1].message == "fix 3 fields: seeds, grid, --set"
        assert app.sweep_launches == []


@pytest.mark.slow
async def test_home_keeps_every_column_up_to_dense_and_an_empty_home_says_how_to_start(home):
    for width, height in SIZES:
        app = make_app(home)
        async with app.run_test(size=(width, height)) as pilot:
            await pilot.pause()
            text = screen_text(app)
            assert "No runs yet" in text and "Enter on a preset" in text, (width, text)
    write_digits_run(home)
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        header = next(line for line in text.splitlines() if line.lstrip().startswith("id "))
        assert header.split()[-2:] == ["best", "dense"], header
        assert "65.3%" in text and "No runs yet" not in text


def stored_runs(home, count: int) -> Store:
    store = Store(home)
    for index in range(count):
        store.create_run({"id": f"20261201-1000{index:02d}-ab{index:02d}", "name": f"run-{index:02d}-" + "x" * 40,
                          "config": {"prune": {"rounds": 1}}, "status": "finished", "started": time.time() + index,
                          "rounds": [], "pid": None, "host": None})
    return store


@EVERY_SIZE
async def test_history_home_end_sort_marks_and_a_new_filter_scrolls_back(home, width, height):
    stored_runs(home, 30)
    app = make_app(home)
    async with app.run_test(size=(width, height)) as pilot:
        await pilot.press("h")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one(RunsTable)
        text = screen_text(app)
        assert "id ▼" in text  # sorted by date, newest first
        header = next(line for line in text.splitlines() if "id ▼" in line)
        assert width < 80 or "dense" in header.split(), header  # the columns up to dense, whole at 80
        await pilot.press("end")
        assert table.cursor_row == 29
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("o")
        assert screen.sort_column == "name" and not screen.sort_reverse and "name ▲" in screen_text(app)
        await pilot.press("O")
        assert screen.sort_reverse and "name ▼" in screen_text(app)
        if table.max_scroll_x:
            table.scroll_to(x=table.max_scroll_x, animate=False, immediate=True)
            await pilot.pause()
            screen.query_one("#filter", Input).value = "run-0"
            await pilot.pause()
            assert table.scroll_x == 0
        await pilot.press("q")  # quits here too
    assert app.return_code == 0


async def test_q_quits_from_the_sweeps_screen_and_ctrl_c_says_how_in_plain_text(home):
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        assert isinstance(app.screen, SweepsScreen)
        await pilot.press("ctrl+c")
        message = list(app._notifications)[-1].message
        assert "Press q" in message and "[b]" not in message
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.slow
async def test_the_palette_holds_the_app_commands_and_the_screen_actions(home):
    write_digits_run(home)
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("New experiment", "History", "Sweeps", "Watch", "Compare", "Export", "Screenshot", "Theme"):
            assert title in titles, title
        assert "Keys" not in titles and len(titles) == len(set(titles))
        app.open_run(DIGITS_RUN)
        await pilot.pause()
        commands = {command.title: command for command in app.get_system_commands(app.screen)}
        assert "Rounds" in commands and commands["Export"].help == "e on this screen"  # the screen's own
        commands["History"].callback()
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)


async def test_question_mark_lists_the_screen_keys_then_the_app_then_navigation_once(home):
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        sections = key_sections(app.screen)
        assert [title for title, _ in sections] == ["this screen", "everywhere", "moving around"]
        own, everywhere, moving = ([what for _, what in rows] for _, rows in sections)
        assert {"New", "History", "Sweeps"} <= set(own) and "Quit" not in own
        assert "Quit" in everywhere and "Help" in everywhere and "Cursor up" in moving
        listed = own + everywhere + moving
        assert len(listed) == len(set(listed))
        assert sum("palette" in what for what in listed) == 1


def test_paused_shows_paused_in_place_of_samples_per_second():
    view = RunView("20261201-000000-beef")
    view.progress.samples_per_s = 1234.0
    assert "1,234 samples/s" in progress_text(view, "running", "live", "GPU n/a").plain
    paused = progress_text(view, "paused", "live", "GPU n/a").plain
    assert "paused" in paused.splitlines()[-1] and "samples/s" not in paused


async def test_compare_std_bands_differ_by_pattern_without_colour(home, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")

    def record(run_id: str, rate: float, seed: int, accuracies: list[float]) -> RunRecord:
        return RunRecord.parse({
            "id": run_id, "name": run_id, "config": {"noise": {"rate": rate}, "runtime": {"seed": seed}},
            "rounds": [{"round": i, "sparsity": 1 - 0.8**i, "test_acc": a} for i, a in enumerate(accuracies)]})

    groups = [RunGroup([record("a", 0.2, 0, [0.5, 0.6, 0.7]), record("b", 0.2, 1, [0.7, 0.8, 0.9])], "rate=0.2"),
              RunGroup([record("c", 0.4, 0, [0.2, 0.3, 0.2]), record("d", 0.4, 1, [0.3, 0.4, 0.35])], "rate=0.4")]
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        chart = CompareChart()
        chart.styles.height = 20
        await app.screen.mount(chart, before=0)
        await pilot.pause()
        chart.set_groups(groups, "test_acc")
        text = chart.render().plain
        legend = text.splitlines()[:2]
        assert "·· ±std" in "\n".join(legend) and ":: ±std" in "\n".join(legend), legend
        inside = "\n".join(plot_rows(text))
        assert "·" in inside and ":" in inside


@pytest.mark.slow
async def test_the_theme_is_kept_for_the_next_start(home, settings_folder):
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme != "nord"
        app.theme = "nord"
        await pilot.pause()
    assert json.loads((settings_folder / "settings.json").read_text())["theme"] == "nord"
    again = make_app(home)
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert again.theme == "nord"
    (settings_folder / "settings.json").write_text("{not json")
    third = make_app(home)
    async with third.run_test(size=(80, 24)) as pilot:  # an unreadable file: the default theme, no error
        await pilot.pause()
        assert third.theme != "nord"


async def test_home_and_end_go_to_the_first_and_last_row_of_home_tables(home):
    stored_runs(home, 30)
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        presets = app.screen.query_one("#presets")
        await pilot.press("end")
        assert presets.cursor_row == presets.row_count - 1 and presets.scroll_x == 0
        await pilot.press("home")
        assert presets.cursor_row == 0
        await pilot.press("tab", "end")
        runs = app.screen.query_one("#runs")
        assert app.focused is runs and runs.cursor_row == runs.row_count - 1 == 19  # the 20 most recent
        await pilot.press("home")
        assert runs.cursor_row == 0
