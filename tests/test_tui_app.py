"""The app through Textual's Pilot on a temporary home: start, watch, pause/stop, compare, detach, quit."""

from __future__ import annotations

import io
import json
import os
import threading
import time

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input, Static
from typer.testing import CliRunner

from sdd_tui.app import SddApp
from sdd_tui.cli import app as cli_app
from sdd_tui.cli.watch import run_to_watch
from sdd_tui.core.config import preset_names
from sdd_tui.core.events import EpochEnded, RoundEnded, RoundStarted, RunEnded, RunStarted, event_from_json
from sdd_tui.core.history.store import Store, StoreRecorder
from sdd_tui.handover import HandOverState
from sdd_tui.screens.compare import CompareScreen, group_table
from sdd_tui.screens.dashboard import DashboardScreen
from sdd_tui.screens.dialogs import QuitScreen
from sdd_tui.screens.history import HistoryScreen
from sdd_tui.screens.new_experiment import NewExperimentScreen
from sdd_tui.widgets.charts import CompareChart, SddChart
from sdd_tui.widgets.panels import EventLog
from sdd_tui.widgets.runs_table import RunsTable

WAIT_LIMIT_S = 90.0  # a bound against hanging, not a speed claim


def make_app(home, **kwargs) -> SddApp:
    return SddApp(store=Store(home), blink=False, **kwargs)


def chart_text(chart) -> str:
    return chart.render().plain


@pytest.mark.slow
async def test_start_smoke_from_the_form_then_find_it_in_history_charted(home, wait_for):
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.query_one("#presets", DataTable).move_cursor(row=preset_names().index("smoke"))
        await pilot.press("enter")
        assert isinstance(app.screen, NewExperimentScreen) and app.screen.preset == "smoke"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        live_dashboard = app.screen
        await wait_for(pilot, lambda: live_dashboard.view.status == "finished", "the run to finish")
        await pilot.press("escape", "h")
        assert isinstance(app.screen, HistoryScreen)
        table = app.screen.query_one("#history", RunsTable)
        assert table.row_count == 1 and "finished" in table.row_text(0)
        await pilot.press("enter")
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen) and dashboard.live is None
        chart = dashboard.query_one(SddChart)
        await wait_for(pilot, lambda: len(chart.rounds) == 4, "the rounds on the chart")
        text = chart_text(chart)
        assert "accuracy % vs sparsity" in text and "20%" in text and "test" in text
        await pilot.press("e")  # export: CSV, JSON and the figure of `sdd-tui plot` into the run's folder
        folder = app.store.run_dir(dashboard.run_id)
        await wait_for(pilot, lambda: (folder / f"{dashboard.run_id}.png").exists(), "the exported figure")
        assert (folder / f"{dashboard.run_id}.png").read_bytes()[:4] == b"\x89PNG"
        assert len((folder / f"{dashboard.run_id}.csv").read_text().splitlines()) == 5  # header + 4 rounds
        assert json.loads((folder / f"{dashboard.run_id}.json").read_text())["status"] == "finished"


@pytest.mark.slow
async def test_keys_answer_while_a_run_trains_pause_resume_stop(home, smoke_config, wait_for):
    config = smoke_config("train.epochs=10000")  # never finishes by itself: the test stops it
    app = make_app(home, start=(config, "smoke"))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        dashboard, live = app.screen, app.live
        await wait_for(pilot, lambda: len(live.view.epochs) >= 2, "training to start")
        await pilot.press("p")
        assert live.control.paused.is_set() and dashboard.status == "paused"
        log_lines = [strip.text for strip in dashboard.query_one(EventLog).lines]
        assert any("paused (between batches)" in line for line in log_lines)  # drawn at once, not at the next tick
        assert dashboard.check_action("resume", ()) and not dashboard.check_action("pause", ())
        await pilot.pause(0.3)  # an epoch that ended just before the pause may still be in the queue
        live.drain()  # fold it in now rather than at the next 2 Hz tick
        position = (live.view.progress.round, live.view.progress.epoch)
        await pilot.pause(0.6)
        assert (live.view.progress.round, live.view.progress.epoch) == position
        await pilot.press("p")
        assert not live.control.paused.is_set()
        await wait_for(pilot, lambda: (live.view.progress.round, live.view.progress.epoch) != position, "progress")
        await pilot.press("s", "y")  # the stop asks first
        await wait_for(pilot, lambda: not live.running, "the run to stop")
        assert dashboard.view.status == "stopped" and app.live is None
    record = Store(home).get_run(live.run_id)
    assert record["status"] == "stopped"
    assert len(record["rounds"]) == len(live.view.results)


@pytest.mark.slow
async def test_compare_two_runs_overlays_their_curves(run_experiment, home, smoke_config):
    for rate in ("0.2", "0.4"):
        run_experiment(smoke_config(f"noise.rate={rate}", "prune.rounds=2"), home)
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("h")
        table = app.screen.query_one("#history", RunsTable)
        assert table.row_count == 2
        await pilot.press("space", "down", "space", "c")
        assert isinstance(app.screen, CompareScreen)
        chart = app.screen.query_one(CompareChart)
        labels = [group.label for group in chart.groups]
        assert len(labels) == 2 and any("rate=0.2" in t for t in labels) and any("rate=0.4" in t for t in labels)
        text = chart_text(chart)
        assert all(label in text for label in labels)  # the legend
        console = Console(file=io.StringIO(), width=120)
        console.print(group_table(chart.groups))
        summary = console.file.getvalue()
        assert all(label in summary for label in labels)
        await pilot.press("m")
        assert chart.metric == "best_test_acc"


def synthetic_events(run_id: str, round_index: int) -> list:
    result = {"round": round_index, "sparsity": 1 - 0.8**round_index, "remaining": 10, "test_acc": 0.5 + 0.1 * round_index,
              "best_test_acc": 0.6, "train_acc": 1.0, "learning_distance": 1.0 + round_index}
    return [
        RoundStarted(run_id=run_id, time=time.time(), round=round_index, rounds=1, sparsity=result["sparsity"],
                     remaining=10, epochs=1),
        EpochEnded(run_id=run_id, time=time.time(), round=round_index, rounds=1, epoch=1, epochs=1, train_loss=0.5,
                   train_acc=0.9, test_loss=0.7, test_acc=result["test_acc"], lr=0.1, seconds=0.1, samples_per_s=100),
        RoundEnded(run_id=run_id, time=time.time(), round=round_index, rounds=1, result=result),
    ]


@pytest.mark.slow
async def test_watch_follows_a_run_whose_events_another_thread_appends(home, wait_for):
    store, run_id = Store(home), "20990101-000000-beef"
    second_round = threading.Event()

    def writer() -> None:
        recorder = StoreRecorder(store)
        recorder(RunStarted(run_id=run_id, time=time.time(), name="elsewhere", preset=None, config={}, device="cpu",
                            rounds=1, epochs=1))
        for event in synthetic_events(run_id, 0):
            recorder(event)
        second_round.wait(WAIT_LIMIT_S)
        for event in [*synthetic_events(run_id, 1), RunEnded(run_id=run_id, time=time.time(), status="finished")]:
            recorder(event)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        await_events = store.events_path(run_id)
        deadline = time.monotonic() + WAIT_LIMIT_S
        while "RoundEnded" not in (await_events.read_text() if await_events.exists() else ""):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert run_to_watch(store, None) == run_id  # the latest running run
        app = make_app(home, watch=run_id)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
            dashboard = app.screen
            await wait_for(pilot, lambda: len(dashboard.view.results) == 1, "round 0")
            assert dashboard.source.label == "watching" and dashboard.status == "running"
            assert dashboard.check_action("stop", ()) and not dashboard.check_action("detach", ())  # steered
            # through its control file (tests/test_tui_control.py); only a run training here detaches
            second_round.set()
            await wait_for(pilot, lambda: dashboard.view.status == "finished", "the run to finish")
            assert [r["round"] for r in dashboard.view.results] == [0, 1]
            await wait_for(pilot, lambda: len(dashboard.query_one(SddChart).rounds) == 2, "the chart")
    finally:
        second_round.set()
        thread.join()


def test_watch_without_a_running_run_is_a_one_line_error(home):
    result = CliRunner().invoke(cli_app, ["watch", "--home", str(home)])
    assert result.exit_code == 2
    assert "error: no run is running" in result.output


@pytest.mark.slow
async def test_a_bad_form_value_shows_its_error_and_starts_nothing(home):
    app = make_app(home)
    async with app.run_test(size=(100, 40)) as pilot:
        app.push_screen(NewExperimentScreen("smoke"))
        await pilot.pause()
        form = app.screen
        form.query_one("#input-noise-rate", Input).value = "1.5"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form and app.live is None
        help_text = form.query_one("#help-noise-rate", Static)
        assert help_text.has_class("error") and "less than or equal to 1" in str(help_text.render())
        assert not form.query_one("#help-train-epochs", Static).has_class("error")
    assert Store(home).list_runs() == [] and not (home / "runs").exists()


@pytest.mark.slow
async def test_detach_hands_the_run_to_a_background_process_and_follows_it(home, smoke_config, wait_for):
    app = make_app(home)  # the real `sdd-tui resume ID` in a background process
    async with app.run_test(size=(100, 30)) as pilot:
        live = app.start_run(smoke_config(), "smoke")
        live.control.paused.set()  # held in round 0, before any epoch has ended
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        dashboard = app.screen
        await pilot.press("d")
        assert any("once the first epoch has ended" in text for _, text in live.view.log)  # nothing to resume yet
        await wait_for(pilot, lambda: live.run_id in app.handovers, "the hand-over")
        assert dashboard.live is None and live.run_id in app.handovers
        states, positions = set(), []

        def seen() -> bool:
            states.add(dashboard.status)
            positions.append((dashboard.view.progress.fraction_done, len(dashboard.view.results)))
            return dashboard.view.status == "finished"

        await wait_for(pilot, seen, "the background run to finish")
        assert "handing over" in states and "stopped" not in states  # never shown as stopped meanwhile
        assert positions == sorted(positions)  # progress never moves backwards
        process = app.handovers[live.run_id].process
        log = [text for _, text in dashboard.view.log]
        assert f"handed over to process {process.pid}" in log and "run stopped" not in log
        assert process.wait(WAIT_LIMIT_S) == 0
        app.check_handovers()
        assert app.handovers[live.run_id].state is HandOverState.ADOPTED
    record = Store(home).get_run(live.run_id)
    assert record["status"] == "finished" and [r["round"] for r in record["rounds"]] == [0, 1, 2, 3]
    assert record["pid"] == process.pid and process.pid != os.getpid()
    lines = Store(home).events_path(live.run_id).read_text().splitlines()
    events = [event_from_json(line) for line in lines]
    starts = [e.resumed_from_round for e in events if isinstance(e, RunStarted)]
    ends = [e.status for e in events if isinstance(e, RunEnded)]
    assert starts == [-1, 0] and ends == ["stopped", "finished"]
    assert (Store(home).run_dir(live.run_id) / "detached.log").exists()


@pytest.mark.slow
async def test_quitting_with_a_run_in_progress_asks_stop_detach_or_cancel(home, smoke_config, wait_for):
    app = make_app(home, start=(smoke_config("train.epochs=10000"), "smoke"))  # never finishes by itself
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.live is not None and len(app.live.view.epochs) >= 1, "training")
        live = app.live
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen) and live.running
        await pilot.press("q", "s")
        await wait_for(pilot, lambda: not live.running, "the run to stop")
        await pilot.pause()
    assert Store(home).get_run(live.run_id)["status"] == "stopped"


@pytest.mark.slow
async def test_a_run_that_cannot_start_shows_the_error_on_its_dashboard(home, smoke_config, wait_for):
    app = make_app(home, start=(smoke_config('runtime.device="cuda:99"'), "smoke"))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        dashboard = app.screen
        await wait_for(pilot, lambda: dashboard.view.status == "failed", "the failure")
        assert "cuda:99" in dashboard.view.error and app.live is None
        await pilot.pause(0.3)
        assert "error: runtime.device=cuda:99" in str(dashboard.query_one("#progress", Static).render())
    assert Store(home).list_runs() == []


@pytest.mark.slow
async def test_a_store_corrupted_while_the_app_is_open_is_an_error_and_the_app_goes_on(run_experiment, home,
                                                                                        smoke_config):
    run_experiment(smoke_config("prune.rounds=1", "train.epochs=1"), home)
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        (home / "store.json").write_text('{"runs": {"1": ')  # truncated by another process or a full disk
        await pilot.press("r")
        await pilot.press("h")
        await pilot.pause(0.3)
        assert isinstance(app.screen, HistoryScreen) and app.is_running
        messages = [n.message for n in app._notifications]
        assert any("is corrupt" in m and "sdd-tui doctor" in m for m in messages)
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running


WARM_UP_PROBE = """
import asyncio, sys, time
from sdd_tui.core.history.store import Store
from sdd_tui.app import SddApp
from sdd_tui.screens.new_experiment import NewExperimentScreen

async def main():
    app = SddApp(store=Store(sys.argv[1]), blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("h")
        await pilot.pause(1.0)
        print("browsing", "torch" in sys.modules, flush=True)
        await pilot.press("escape", "enter")
        assert isinstance(app.screen, NewExperimentScreen)
        deadline = time.monotonic() + 60
        while "torch" not in sys.modules and time.monotonic() < deadline:
            await pilot.pause(0.1)
        print("form", "torch" in sys.modules, flush=True)

asyncio.run(main())
"""


@pytest.mark.slow
def test_the_engine_loads_when_the_new_experiment_form_opens_not_while_browsing(home, tmp_path):
    """Importing torch takes seconds of CPU and holds the GIL: the app leaves it for when a run is near."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-P", "-c", WARM_UP_PROBE, str(home)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["browsing", "False", "form", "True"], done.stdout
