"""Text from users (run names, errors) is printed as text: no Rich markup, control characters escaped,
emoji kept as they are in the store."""

from __future__ import annotations

import functools
import json

import pytest
from sdd_test_helpers import invoke

from sdd_tui.core.config import override
from sdd_tui.core.format import printable
from sdd_tui.core.history.store import Store

NAME = "run 😀 [/bold] \x1b[2J[red]x"
QUICK = ["--set", "prune.rounds=1", "--set", "train.epochs=1"]
invoke = functools.partial(invoke, env={"COLUMNS": "200"})  # a wide table: the name on one line


def test_printable_escapes_control_characters_and_keeps_the_rest():
    assert printable("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert printable("run 😀 [/bold] ü") == "run 😀 [/bold] ü"


def test_a_name_with_markup_escapes_and_emoji_is_stored_and_shown_as_text(tmp_path):
    home = str(tmp_path / "home")
    started = invoke("--preset", "smoke", *QUICK, "--name", NAME, "--home", home)
    assert started.exit_code == 0, started.output
    assert "\x1b" not in started.output and "\\x1b[2J" in started.output
    (record,) = Store(home).list_runs()
    assert record["name"] == NAME and record["config"]["name"] == NAME  # the emoji itself, not \\ud83d\\ude00

    listed = invoke("runs", "--home", home)
    assert listed.exit_code == 0, listed.output
    assert "[/bold]" in listed.output and "\x1b" not in listed.output
    shown = invoke("runs", "show", record["id"], "--home", home)
    assert shown.exit_code == 0, shown.output
    assert "run 😀 [/bold] \\x1b[2J[red]x" in shown.output
    assert json.loads(invoke("runs", "show", record["id"], "--json", "--home", home).output)["name"] == NAME


def test_an_error_quoting_user_input_is_escaped(tmp_path):
    result = invoke("--preset", "smoke", "--set", "train.epochs=\x1b[31m", "--home", str(tmp_path / "home"))
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\\x1b" in result.stderr


@pytest.mark.slow
async def test_the_app_shows_such_a_name_as_text_in_home_history_and_the_dashboard(run_experiment, smoke_config,
                                                                                    tmp_path):
    from textual.widgets import DataTable

    from sdd_tui.app import SddApp
    from sdd_tui.screens.dashboard import DashboardScreen
    from sdd_tui.screens.history import HistoryScreen
    from sdd_tui.widgets.panels import progress_text
    from sdd_tui.widgets.runs_table import RunsTable

    home = tmp_path / "home"
    run_id, status, _ = run_experiment(smoke_config("prune.rounds=1", "train.epochs=1", override("name", NAME)), home)
    assert status == "finished"
    shown = "run 😀 [/bold] \\x1b[2J[red]x"
    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        runs = app.screen.query_one("#runs", DataTable)
        assert shown in str(runs.get_row_at(0)[1])
        app.push_screen(HistoryScreen())
        await pilot.pause()
        history = app.screen.query_one("#history", RunsTable)
        assert history.row_text(0)[1] == shown
        assert shown in history.render_line(1).text  # drawn as typed, under the header line
        app.open_run(run_id)
        await pilot.pause(0.5)
        assert isinstance(app.screen, DashboardScreen)
        header = progress_text(app.screen.source.view, "finished", "from the store").plain
        assert shown in header and "\x1b" not in header
