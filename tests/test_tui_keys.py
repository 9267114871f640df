"""Safe keys and help: Enter never deletes or stops, `?` lists the screen's keys, Ctrl+P has the theme,
and the footer follows resizes."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console
from sdd_test_helpers import add_run, run_record
from textual.command import CommandPalette
from textual.widgets import Button, Footer

from sdd_tui.app import SddApp
from sdd_tui.core.history.store import Store
from sdd_tui.screens.dashboard import DashboardScreen
from sdd_tui.screens.dialogs import ConfirmScreen, QuitScreen
from sdd_tui.screens.help import HelpScreen, help_table, key_rows
from sdd_tui.screens.history import HistoryScreen


def stored_run(home, run_id: str = "20261130-004931-6677") -> Store:
    record = run_record(run_id, name="kept", config={"prune": {"rounds": 3}}, started=time.time(), pid=None, host=None)
    rounds = [{"round": index, "sparsity": 1 - 0.8**index, "test_acc": 0.5, "train_acc": 1.0} for index in range(4)]
    return add_run(Store(home), record, rounds)


def help_text(help_screen: HelpScreen) -> str:
    console = Console(file=io.StringIO(), width=100)
    console.print(help_table(help_screen.shown_for))
    return console.file.getvalue()


def footer_keys(screen) -> str:
    return " ".join(str(key.render()) for key in screen.query_one(Footer).children)


@pytest.mark.slow
async def test_enter_in_the_delete_dialog_cancels_and_y_deletes(home):
    store = stored_run(home)
    app = SddApp(store=store, blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("h", "x")
        assert isinstance(app.screen, ConfirmScreen)
        assert isinstance(app.screen.focused, Button) and app.screen.focused.id == "no"
        await pilot.press("enter")
        assert isinstance(app.screen, HistoryScreen) and len(store.list_runs()) == 1
        await pilot.press("x", "y")
        await pilot.pause()
        assert store.list_runs() == []


@pytest.mark.slow
async def test_enter_in_the_quit_dialog_cancels_and_the_run_goes_on(home, smoke_config, wait_for):
    app = SddApp(store=Store(home), blink=False, start=(smoke_config("train.epochs=10000"), "smoke"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.live is not None and len(app.live.view.epochs) >= 1, "training")
        live = app.live
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen) and app.screen.focused.id == "cancel"
        await pilot.press("enter")
        assert isinstance(app.screen, DashboardScreen) and live.running and not live.control.stop.is_set()
        epoch = live.view.progress.epoch
        await wait_for(pilot, lambda: live.view.progress.epoch > epoch, "more epochs")
        await pilot.press("s", "y")  # the stop asks first
        await wait_for(pilot, lambda: not live.running, "the run to stop")


@pytest.mark.slow
async def test_question_mark_lists_every_key_of_the_screen_and_ctrl_p_has_the_theme(home):
    run_id = "20261130-004931-6677"
    stored_run(home, run_id)
    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = help_text(app.screen)
        for key, what in (("n", "New"), ("h", "History"), ("w", "Watch"), ("q", "Quit"), ("ctrl+p", "theme")):
            assert key in listed and what in listed, (key, what)
        await pilot.press("escape")
        app.open_run(run_id)
        await pilot.pause()
        rows = dict((what, keys) for keys, what in key_rows(app.screen))
        assert rows["Screenshot"] == "c" and rows["Export"] == "e" and rows["Back"] == "esc" and rows["Help"] == "?"
        assert "Pause" not in rows  # only the keys that apply: a finished run has nothing to pause
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen) and "Screenshot" in help_text(app.screen)
        await pilot.press("question_mark")  # ? closes it again
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        assert any("theme" in command.title.lower() for command in app.get_system_commands(app.screen))


@pytest.mark.slow
async def test_the_chart_key_shows_in_the_footer_only_while_the_terminal_is_narrow(home, wait_for):
    run_id = "20261130-004931-6677"
    stored_run(home, run_id)
    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(run_id)
        await pilot.pause()
        dashboard = app.screen
        narrow = lambda: "Chart" in footer_keys(dashboard) and "Export" in footer_keys(dashboard)  # noqa: E731
        wide = lambda: "Chart" not in footer_keys(dashboard) and "Export" in footer_keys(dashboard)  # noqa: E731
        await wait_for(pilot, narrow, "v Chart in the footer at 80 columns")
        await pilot.resize_terminal(200, 60)
        await wait_for(pilot, wide, "no v Chart at 200 columns")
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, narrow, "v Chart again at 80 columns")
