"""The Textual app: home, new experiment, run dashboards, history and compare, sweeps.

One run at a time trains inside the app (a thread worker, see sdd_tui.live); a run started while it
trains goes to a background process (sdd_tui.background); any number of runs can be watched or opened
from the store. Quitting while a run trains asks: stop, detach or cancel; losing the terminal detaches
it (sdd_tui.hangup).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.worker import WorkerState

from sdd_tui.background import Launch, start_in_background
from sdd_tui.commands import palette_commands
from sdd_tui.core.config import ExperimentConfig
from sdd_tui.core.errors import SddError
from sdd_tui.core.format import printable
from sdd_tui.core.history.store import Store, display_status
from sdd_tui.core.runs.spawn import spawn
from sdd_tui.handover import HandOver, HandOverState, ResumeCommand, resume_command
from sdd_tui.hangup import HangupGuard
from sdd_tui.live import EngineEvents, LiveRun, leave_a_core_for_the_ui, warm_up_engine
from sdd_tui.screens.dashboard import DashboardScreen
from sdd_tui.screens.dialogs import HandOverScreen, QuitScreen
from sdd_tui.screens.help import HelpScreen
from sdd_tui.screens.home import HomeScreen
from sdd_tui.settings import load_settings, save_setting
from sdd_tui.sources import FollowedSource, LiveSource, open_source


class SddApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "sdd-tui"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("q", "quit", "Quit", show=False),  # every screen; typed as text in a field (Ctrl+Q quits there)
        Binding("question_mark", "help", "Help"),
    ]
    ENABLE_COMMAND_PALETTE = True  # ctrl+p: every command and the theme; `?` lists it (no footer entry)

    def __init__(
        self,
        store: Store,
        start: tuple[ExperimentConfig, str | None] | None = None,
        watch: str | None = None,
        blink: bool = True,
        resume_with: ResumeCommand = resume_command,
        spawn_with=spawn,
    ) -> None:
        super().__init__()
        self.store = store
        self.start_request = start
        self.watch_request = watch
        self.blink = blink  # tests and snapshots turn the cursor blink off for stable screens
        self.resume_with = resume_with
        self.spawn_with = spawn_with  # core.runs.spawn.spawn(command, log): how background sweeps start (tests capture it)
        self.sweep_launches: list = []  # sweeps started from this app (sdd_tui.screens.new_sweep.SweepLaunch)
        self.live: LiveRun | None = None
        self.handovers: dict[str, HandOver] = {}  # run id -> its hand-over to a background process
        self.quitting = False  # quit once the run training here has stopped (and been handed over)
        self.launches: dict[str, Launch] = {}  # run id -> the background process this app started for it
        self.handed_over: tuple[str, int, object] | None = None  # (run id, pid, log) of the last hand-over
        self.hangup = HangupGuard(self)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Notifications quote run names, paths and errors: shown as text (no markup, control characters
        escaped) unless a caller asks for markup."""
        super().notify(message if markup else printable(message), title=title, severity=severity, timeout=timeout,
                       markup=markup)

    def get_system_commands(self, screen):
        """Ctrl+P: the screen's own commands, the app's (sdd_tui.commands), the theme, screenshot, quit."""
        return palette_commands(self, screen, super().get_system_commands(screen))

    def get_default_screen(self) -> HomeScreen:
        return HomeScreen()

    def on_mount(self) -> None:
        self.restore_theme()
        self.hangup.install()
        self.set_interval(1.0, self.check_handovers)
        if self.start_request is not None:
            warm_up_engine()
            self.start_run(*self.start_request)
        elif self.watch_request is not None:
            self.open_run(self.watch_request)

    def restore_theme(self) -> None:
        """The theme chosen last time (sdd_tui.settings), and every later choice saved."""
        theme = load_settings().get("theme")
        if isinstance(theme, str) and theme in self.available_themes:
            self.theme = theme
        self.theme_changed_signal.subscribe(self, self.save_theme)

    def save_theme(self, theme) -> None:
        problem = save_setting("theme", theme.name)
        if problem:
            self.notify(problem, severity="warning")

    # ------------------------------------------------------------------ runs

    def start_run(self, config: ExperimentConfig, preset: str | None) -> LiveRun | Launch | None:
        """Train `config` in a thread worker and open its dashboard; while another run trains here, in a
        background process whose dashboard follows it."""
        if self.live is not None and self.live.running:
            launch = start_in_background(self, config, preset)
            if launch is not None:
                self.notify(f"{self.live.run_id} trains here, so this run started in the background: process "
                            f"{launch.process.pid}, log {launch.log}", timeout=10)
                self.push_screen(DashboardScreen(launch.run_id, FollowedSource(self.store, launch.run_id)))
            return launch
        self.live = LiveRun(self, self.store, leave_a_core_for_the_ui(config), preset)
        self.push_screen(DashboardScreen(self.live.run_id, LiveSource(self.live, self.store)))  # it starts the run
        return self.live

    def open_run(self, run_id: str) -> None:
        live = self.live if self.live is not None and self.live.run_id == run_id else None
        try:
            source = LiveSource(live, self.store) if live else open_source(self.store, run_id)
        except SddError as error:  # a run folder holding a link, say: refused, and the app goes on
            self.notify(str(error), severity="error", timeout=15)
            return
        self.push_screen(DashboardScreen(run_id, source))

    def dashboards_of(self, run_id: str) -> list[DashboardScreen]:
        return [s for s in self.screen_stack if isinstance(s, DashboardScreen) and s.run_id == run_id]

    def latest_running_run(self) -> str | None:
        running = [r for r in self.stored_runs() if display_status(r) == "running"]
        return running[0]["id"] if running else None

    def stored_runs(self) -> list[dict]:
        """The store's run summaries, newest first; a store that cannot be read (corrupt, truncated while
        the app is open) is an error notification and no runs, and the app goes on."""
        try:
            return self.store.summaries()
        except SddError as error:
            self.notify(str(error), severity="error", timeout=15)
            return []

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
        if live.handover is not None:
            self.finish_handover(live, live.handover)
        if self.quitting:
            self.exit(message=self.handed_over_text())

    # ------------------------------------------------------------------ detach and quit

    def detach_live_run(self) -> None:
        live = self.live
        if live is None or not live.running:
            self.notify("no run is training in this app", severity="warning")
            return
        live.hand_over()  # the dashboard says so from the hand-over's own event

    def finish_handover(self, live: LiveRun, handover: HandOver) -> None:
        """The in-app run has stopped: start the background process (its dashboards follow it on)."""
        if live.view.status != "handing over":
            handover.fail(f"the run {live.view.status} before it could be handed over")
            return
        process, log = self.spawn_handover(live, handover)
        run_id = live.run_id
        self.handovers[run_id] = handover
        self.notify(f"{run_id} goes on in process {process.pid} (log {log}); sdd-tui watch {run_id} reattaches",
                    timeout=10)

    def spawn_handover(self, live: LiveRun, handover: HandOver):
        """Start the background process that takes the run over (once; also from sdd_tui.hangup's thread)."""
        log = self.store.paths(live.run_id).detached_log
        process = handover.spawn(self.store.home, log, self.resume_with)
        self.handed_over = (live.run_id, process.pid, log)
        return process, log

    def handed_over_text(self) -> Text | None:
        """What the terminal shows once the app has closed after a detach."""
        if self.handed_over is None:
            return None
        run_id, pid, log = self.handed_over
        return Text(f"{run_id} goes on in the background: process {pid}, log {log}\n"
                    f"follow it: sdd-tui watch {run_id}")

    def check_handovers(self) -> None:
        """Note when a background process has taken its run over; say so when one has failed (e.g. it
        could not resume)."""
        for run_id, handover in self.handovers.items():
            if handover.state is HandOverState.SPAWNED and self._runs_in(run_id, handover.process.pid):
                handover.adopted()
            code = handover.newly_exited()
            if code is None or code == 0:
                continue
            log = self.store.paths(run_id).detached_log
            lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines() if log.exists() else []
            last = lines[-1] if lines else "no output"
            self.notify(f"the background process of {run_id} exited with {code}: {last} (see {log})",
                        severity="error", timeout=15)
        for launch in self.launches.values():
            if (failure := launch.failure()) is not None:
                self.notify(failure, severity="error", timeout=15)

    def _runs_in(self, run_id: str, pid: int) -> bool:
        try:
            record = self.store.run(run_id)
        except SddError:
            return False
        return record.pid == pid and record.status == "running"

    def action_help_quit(self) -> None:
        """Ctrl+C: say how to quit, as plain text (Textual's own toast is markup, and notify shows text)."""
        self.notify("Press q (or Ctrl+Q in a text field) to quit the app", title="Do you want to quit?")

    def action_quit(self) -> None:
        live = self.live
        if live is None or not live.running:
            self.exit()
            return
        if isinstance(self.screen, QuitScreen):  # asked already
            return

        def chosen(choice: str | None) -> None:
            if choice == "stop":
                self.quitting = True
                live.cancel_hand_over("stopped instead")  # stop wins over a hand-over asked for earlier
                live.stop()
                self.notify("stopping after this batch, then quitting")
            elif choice == "detach":
                self.quitting = True
                self.detach_live_run()
                self.push_screen(HandOverScreen(live.view.progress.name or live.run_id))

        self.push_screen(QuitScreen(live.view.progress.name or live.run_id), chosen)

    def on_unmount(self) -> None:
        self.hangup.uninstall()
        # A thread cannot be killed and the interpreter waits for it: never leave the engine running.
        if self.live is not None:
            self.live.stop()
