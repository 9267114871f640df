"""The Textual app: home, new experiment, run dashboards, history and compare.

One run at a time trains inside the app (a thread worker, see sdd_tui.live); any number of runs
can be watched or opened from the store. Quitting while a run trains asks: stop, detach or cancel.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.worker import WorkerState

from core.config import ExperimentConfig
from core.store import Store, display_status
from sdd_tui.live import (
    EngineEvents,
    LiveRun,
    leave_a_core_for_the_ui,
    resume_command,
    spawn_detached,
    warm_up_engine,
)  # fmt: skip
from sdd_tui.screens.dashboard import DashboardScreen
from sdd_tui.screens.dialogs import QuitScreen
from sdd_tui.screens.home import HomeScreen

ResumeCommand = Callable[[Path, str], list[str]]


class SddApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "sdd-tui"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]
    ENABLE_COMMAND_PALETTE = False  # its footer entry costs room at 80 columns; every action has a key

    def __init__(
        self,
        store: Store,
        start: tuple[ExperimentConfig, str | None] | None = None,
        watch: str | None = None,
        blink: bool = True,
        resume_with: ResumeCommand = resume_command,
    ) -> None:
        super().__init__()
        self.store = store
        self.start_request = start
        self.watch_request = watch
        self.blink = blink  # tests and snapshots turn the cursor blink off for stable screens
        self.resume_with = resume_with
        self.live: LiveRun | None = None
        self.detached: dict[str, subprocess.Popen] = {}  # run id -> the background process it was handed to
        self.detach_ended: set[str] = set()
        self.quit_when_idle = False
        self.quit_after_detach = False

    def get_default_screen(self) -> HomeScreen:
        return HomeScreen()

    def on_mount(self) -> None:
        warm_up_engine()
        self.set_interval(1.0, self.check_detached)
        if self.start_request is not None:
            self.start_run(*self.start_request)
        elif self.watch_request is not None:
            self.open_run(self.watch_request)

    # ------------------------------------------------------------------ runs

    def start_run(self, config: ExperimentConfig, preset: str | None) -> LiveRun | None:
        """Train `config` in a thread worker and open its dashboard."""
        if self.live is not None and self.live.running:
            self.notify(f"{self.live.run_id} is still training here; stop or detach it first", severity="error")
            return None
        self.live = LiveRun(self, self.store, leave_a_core_for_the_ui(config), preset)
        self.push_screen(DashboardScreen(self.live.run_id, live=self.live))  # it starts the run once painted
        return self.live

    def open_run(self, run_id: str) -> None:
        live = self.live if self.live is not None and self.live.run_id == run_id else None
        self.push_screen(DashboardScreen(run_id, live=live))

    def dashboards_of(self, run_id: str) -> list[DashboardScreen]:
        return [s for s in self.screen_stack if isinstance(s, DashboardScreen) and s.run_id == run_id]

    def latest_running_run(self) -> str | None:
        running = [r for r in self.store.summaries() if display_status(r) == "running"]
        return running[0]["id"] if running else None

    def on_engine_events(self, message: EngineEvents) -> None:
        if self.live is not None and message.run_id == self.live.run_id:
            self.live.drain()

    def on_worker_state_changed(self, event) -> None:
        live = self.live
        if live is None or event.worker is not live.worker:
            return
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        live.drain()
        if event.state == WorkerState.ERROR and live.view.status != "failed":
            live.view.fail(str(event.worker.error))  # failed before the engine could say so (e.g. no GPU)
        if event.state == WorkerState.ERROR:
            self.notify(f"run failed: {event.worker.error}", severity="error", timeout=10)
        self.live = None
        for screen in self.dashboards_of(live.run_id):  # how the run ended shows at once, not at the next redraw
            screen.redraw()
        if live.detach_requested:
            self.finish_detach(live)
        if self.quit_when_idle:
            self.exit()

    # ------------------------------------------------------------------ detach and quit

    def detach_live_run(self, quit_after: bool = False) -> None:
        live = self.live
        if live is None or not live.running:
            self.notify("no run is training in this app", severity="warning")
            return
        self.quit_after_detach = quit_after
        ready = live.request_detach()
        live.view.add_log("warning", "handing over to a background process at the next batch" if ready else
                          "handing over once the first epoch has ended")

    def finish_detach(self, live: LiveRun) -> None:
        """The in-app run has stopped: start the background process and follow it."""
        if live.view.status != "stopped":
            live.view.add_log("info", f"the run {live.view.status} before it could be handed over")
            self.quit_when_idle = self.quit_when_idle or self.quit_after_detach
            return
        home, run_id = self.store.home, live.run_id
        process = spawn_detached(home, run_id, self.resume_with(home, run_id))
        self.detached[run_id] = process
        log = self.store.paths(run_id).detached_log
        self.notify(f"{run_id} goes on in process {process.pid} (log {log}); sdd-tui watch {run_id} reattaches",
                    timeout=10)
        if self.quit_after_detach:
            self.quit_when_idle = True
            return
        for screen in self.dashboards_of(run_id):
            screen.follow(handover=process)

    def check_detached(self) -> None:
        """Say so when a background process we started has failed (e.g. it could not resume)."""
        for run_id, process in self.detached.items():
            code = process.poll()
            if code is None or run_id in self.detach_ended:
                continue
            self.detach_ended.add(run_id)
            if code != 0:
                log = self.store.paths(run_id).detached_log
                lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines() if log.exists() else []
                last = lines[-1] if lines else "no output"
                self.notify(f"the background process of {run_id} exited with {code}: {last} (see {log})",
                            severity="error", timeout=15)

    def action_quit(self) -> None:
        live = self.live
        if live is None or not live.running:
            self.exit()
            return

        def chosen(choice: str | None) -> None:
            if choice == "stop":
                self.quit_when_idle = True
                live.detach_requested = False  # stop wins over a hand-over asked for earlier
                live.stop()
                self.notify("stopping after this batch, then quitting")
            elif choice == "detach":
                self.detach_live_run(quit_after=True)

        self.push_screen(QuitScreen(live.view.progress.name or live.run_id), chosen)

    def on_unmount(self) -> None:
        # A thread cannot be killed and the interpreter waits for it: never leave the engine running.
        if self.live is not None:
            self.live.stop()
