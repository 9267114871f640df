"""Steering from the dashboards: `s` asks first (Enter keeps the run), `p` reaches a run trained in another
process, `r` resumes an interrupted run in the background and follows it, a second run from the form
starts in the background with the form kept, and Detach says where the run goes on."""

from __future__ import annotations

import os
import time

import pytest

from sdd_tui.app import SddApp
from sdd_tui.core.engine.run_control import read_request, write_request
from sdd_tui.core.engine.training import Control
from sdd_tui.core.events import EpochEnded
from sdd_tui.core.history.store import Store
from sdd_tui.core.runs.launch import build_run
from sdd_tui.core.runs.spawn import sdd_tui_command, spawn
from sdd_tui.screens.dashboard import DashboardScreen
from sdd_tui.screens.dialogs import ConfirmScreen, HandOverScreen
from sdd_tui.screens.new_experiment import NewExperimentScreen

LIMIT_S = 90.0
DEAD_PID = 2**22 + 17  # above the default pid_max: no such process


def make_app(home, **kwargs) -> SddApp:
    return SddApp(store=Store(home), blink=False, **kwargs)


def stopped_run(home, config) -> str:
    """A run stopped after its second epoch: a checkpoint to resume from."""
    control = Control()
    stop = lambda event: isinstance(event, EpochEnded) and event.epoch == 2 and control.stop.set()  # noqa: E731
    run = build_run(config, home, control=control, sinks=[stop])
    assert run.run() == "stopped"
    return run.run_id


@pytest.mark.slow
async def test_s_asks_first_and_enter_keeps_the_run_training(home, smoke_config, wait_for):
    app = make_app(home, start=(smoke_config("train.epochs=10000"), "smoke"))  # never finishes by itself
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.live is not None and len(app.live.view.epochs) >= 1, "training")
        live = app.live
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen) and app.screen.focused.id == "no"
        await pilot.press("enter")  # the focused, harmless button
        assert isinstance(app.screen, DashboardScreen)
        epochs = len(live.view.epochs)
        await wait_for(pilot, lambda: len(live.view.epochs) > epochs, "training after Enter")
        assert live.running and not live.control.stop.is_set()
        await pilot.press("s", "y")
        await wait_for(pilot, lambda: not live.running, "the run to stop")
    assert Store(home).get_run(live.run_id)["status"] == "stopped"


@pytest.mark.slow
async def test_r_on_an_interrupted_runs_dashboard_resumes_it_and_follows_it_to_the_end(home, smoke_config, wait_for):
    run_id = stopped_run(home, smoke_config())
    Store(home).update_run(run_id, status="running", pid=DEAD_PID)  # its process died: interrupted, and
    events = Store(home).events_path(run_id)  # its events end without a RunEnded
    events.write_text("".join(line for line in events.read_text().splitlines(True) if '"RunEnded"' not in line))
    app = make_app(home, watch=run_id)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        dashboard = app.screen
        await wait_for(pilot, lambda: dashboard.status == "interrupted", "the interrupted status")
        assert dashboard.check_action("resume_run", ()) and not dashboard.check_action("stop", ())
        await pilot.press("r")
        launch = app.launches[run_id]
        await wait_for(pilot, lambda: dashboard.view.status == "finished", "the resumed run to finish")
        assert launch.process.wait(LIMIT_S) == 0
        assert not dashboard.check_action("resume_run", ())
    record = Store(home).get_run(run_id)
    assert record["status"] == "finished" and [r["round"] for r in record["rounds"]] == [0, 1, 2, 3]
    assert record["pid"] == launch.process.pid


@pytest.mark.slow
async def test_p_and_s_reach_a_run_trained_in_another_process(home, smoke_config, wait_for):
    run_id = stopped_run(home, smoke_config("train.epochs=10000"))
    process = spawn(sdd_tui_command("resume", run_id, "--home", str(home)), Store(home).paths(run_id).detached_log)
    try:
        app = make_app(home, watch=run_id)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
            dashboard = app.screen
            await wait_for(pilot, lambda: dashboard.status == "running" and dashboard.view.epochs, "training")
            await pilot.press("p")
            assert read_request(Store(home).paths(run_id).control).action == "pause"
            await wait_for(pilot, lambda: dashboard.status == "paused", "the run's own pause event")
            assert dashboard.check_action("resume", ())
            await pilot.press("s", "y")
            await wait_for(pilot, lambda: dashboard.status == "stopped", "the run to stop")
        assert process.wait(LIMIT_S) == 130
    finally:
        process.kill()


@pytest.mark.slow
async def test_a_run_started_while_another_trains_here_goes_to_the_background_and_the_form_stays(
        home, smoke_config, wait_for):
    app = make_app(home, start=(smoke_config("train.epochs=10000"), "smoke"))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.live is not None and app.live.view.epochs, "training here")
        form = NewExperimentScreen("smoke")
        app.push_screen(form)
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.launches, "the background start")
        (run_id, launch), = app.launches.items()
        assert isinstance(app.screen, DashboardScreen) and app.screen.run_id == run_id
        assert form in app.screen_stack  # the form is kept under the new run's dashboard
        await wait_for(pilot, lambda: app.screen.view.status == "finished", "the background run to finish")
        assert launch.process.wait(LIMIT_S) == 0
        await pilot.press("escape")
        assert app.screen is form
        app.live.stop()
    assert Store(home).get_run(run_id)["status"] == "finished"


@pytest.mark.slow
async def test_detach_and_quit_says_so_while_it_waits_then_where_the_run_goes_on(home, smoke_config, wait_for):
    app = make_app(home, start=(smoke_config("train.epochs=10000"), "smoke"))  # never finishes by itself
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.live is not None and len(app.live.view.epochs) >= 1, "training")
        run_id = app.live.run_id
        await pilot.press("q", "d")
        assert isinstance(app.screen, HandOverScreen)
        await wait_for(pilot, lambda: app.handed_over is not None, "the hand-over")
    _, pid, log = app.handed_over
    text = app.handed_over_text().plain
    assert f"{run_id} goes on in the background: process {pid}, log {log}" in text
    assert f"sdd-tui watch {run_id}" in text and pid != os.getpid()
    deadline = time.monotonic() + LIMIT_S
    while Store(home).get_run(run_id).get("pid") != pid:  # the background process has taken the run over
        assert time.monotonic() < deadline, "the background process never took the run over"
        time.sleep(0.1)
    write_request(home, run_id, "stop")  # as `sdd-tui stop ID` does
    assert os.waitpid(pid, 0)[1] >> 8 == 130
    assert Store(home).get_run(run_id)["status"] == "stopped"
