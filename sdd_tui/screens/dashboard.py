"""The run dashboard: a run training in the app (live), one followed from its events file, or a finished one.

The dashboard polls one RunSource (sdd_tui.sources), which keeps a RunView and says the status; a
timer redraws at most REDRAWS_PER_S times a second, and only when the view or the status changed.
While the run trains, a system line says what the machine does for it (core.runs.system); `t` swaps the
charts for the table of rounds that `sdd-tui runs show` prints.
"""

from __future__ import annotations

import json
import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from sdd_tui.background import RESUMABLE, STEERABLE, ask, resume_in_background
from sdd_tui.core.analysis.results import csv_text, run_json
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import display_status
from sdd_tui.core.runs.system import SystemMonitor, SystemSample
from sdd_tui.rounds_table import rounds_table
from sdd_tui.runview import RunView
from sdd_tui.screens.dialogs import ConfirmScreen
from sdd_tui.sources import FollowedSource, RunSource
from sdd_tui.widgets.charts import DistanceChart, EpochChart, SddChart
from sdd_tui.widgets.panels import ACTIVE, EventLog, ProgressPanel

REDRAWS_PER_S = 2  # the text panels (keys redraw at once); every redraw holds the GIL, taken from training
CHART_REDRAWS_PER_S = 1  # a plotext chart costs ~25 ms of the GIL per draw, taken from training
CHARTS = ("sdd-chart", "epoch-chart", "distance-chart")
SYSTEM_SAMPLE_S = 1.0  # how often the system line is read (CPU % is the average since the last reading)

WIDE_FOOTER = 100  # columns from which the footer spaces its keys out


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Unpause"),
        Binding("s", "stop", "Stop"),
        Binding("d", "detach", "Detach"),
        Binding("r", "resume_run", "Resume run"),
        Binding("v", "next_chart", "Chart"),
        Binding("t", "toggle_table", "Rounds"),
        Binding("c", "screenshot", "Screenshot", show=False),  # in `?` and Ctrl+P: 80 columns hold the rest
        Binding("e", "export", "Export"),
        Binding("R", "report", "Report"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit", show=False),  # likewise; home's footer shows it
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (24, "-tall")]  # short: no title bar, a two-line log (room for a chart)

    def __init__(self, run_id: str, source: RunSource) -> None:
        super().__init__()
        self.run_id = run_id
        self.source = source
        self.drawn_version = -1
        self.drawn_state: tuple = ()
        self.drawn_rounds: tuple = ()
        self.drawn_epochs: tuple = ()
        self.shown_chart = 0
        self.footer_state: tuple = ()
        self.charts_drawn_at = 0.0
        self.charts_pending = False
        self.monitor: SystemMonitor | None = None
        self.monitored: tuple = ()  # (pid, device) the monitor reads
        self.system = ""  # the system line's readings
        self.system_read_at = 0.0

    def compose(self) -> ComposeResult:
        yield Header()
        yield ProgressPanel(id="progress")
        with Container(id="charts"):
            yield SddChart(id="sdd-chart", classes="chart -shown")
            yield EpochChart(id="epoch-chart", classes="chart")
            yield DistanceChart(id="distance-chart", classes="chart")
        with VerticalScroll(id="rounds-view"):
            yield Static(id="round-table")
        yield EventLog(id="log")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def on_mount(self) -> None:
        self.set_interval(1 / REDRAWS_PER_S, self.tick)
        self.tick()
        if self.live is not None:
            self.call_after_refresh(self.live.start)  # no-op when it already trains

    # ------------------------------------------------------------------ the source

    @property
    def view(self) -> RunView:
        return self.source.view

    @property
    def live(self):
        """The run when it trains in this app (pause, stop and detach apply), else None."""
        return self.source.live

    @property
    def status(self) -> str:
        return self.source.status

    def tick(self) -> None:
        self.source.poll()
        self._read_system()
        if self.view.version != self.drawn_version or self._state() != self.drawn_state:
            self.redraw()
        if self.charts_pending and time.monotonic() - self.charts_drawn_at >= 1 / CHART_REDRAWS_PER_S:
            self.redraw_charts()
        self._refresh_footer()

    def _state(self) -> tuple:
        return self.status, self.source.label, self.system

    def _read_system(self) -> None:
        """The system line of a run that trains: its process (when on this host) and its GPU."""
        now = time.monotonic()
        if self.status not in ACTIVE:
            self.system = ""
            return
        if now - self.system_read_at < SYSTEM_SAMPLE_S:
            return
        self.system_read_at = now
        key = (self.source.process_id, self.view.progress.device)
        if key != self.monitored:
            self.monitored, self.monitor = key, SystemMonitor(*key)
        self.system = (self.monitor.sample() if self.monitor else SystemSample()).text()

    def redraw(self) -> None:
        view = self.view
        self.drawn_version = view.version
        self.drawn_state = self._state()
        with self.app.batch_update():
            self.query_one(ProgressPanel).show(view, self.status, self.source.label, self.system)
            self.query_one(EventLog).show(view)
        self.charts_pending = True

    def redraw_charts(self) -> None:
        view = self.view
        self.charts_pending = False
        self.charts_drawn_at = time.monotonic()
        with self.app.batch_update():
            rounds_key = tuple((r["round"], r.get("test_acc"), r.get("learning_distance")) for r in view.results)
            if rounds_key != self.drawn_rounds:
                self.drawn_rounds = rounds_key
                self.query_one(SddChart).set_rounds(view.results)
                self.query_one(DistanceChart).set_rounds(view.results)
                self._fill_round_table()
            epochs_key = (view.progress.round, len(view.epochs), view.epochs[-1].epoch if view.epochs else 0)
            if epochs_key != self.drawn_epochs:
                self.drawn_epochs = epochs_key
                self.query_one(EpochChart).set_points(view.epochs, view.progress.round)

    def on_resize(self) -> None:
        self.drawn_state = ()  # the header's lines are elided to the width: drawn again at the next tick
        self.call_after_refresh(self._refresh_footer)  # `v Chart` comes and goes with the -narrow class
        self.query_one(Footer).compact = self.size.width < WIDE_FOOTER  # one space between keys: all fit in 80

    def _refresh_footer(self) -> None:
        """Rebuild the footer only when the keys that apply change (rebuilding it is costly)."""
        state = (self.live is not None and self.live.running, self.live is not None and self.live.paused,
                 self.has_class("-narrow"), self.status)
        if state != self.footer_state:
            self.footer_state = state
            self.refresh_bindings()

    # ------------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause and stop reach the run whichever process trains it (this app, or another through its
        control file); detach only a run training here; `r` a stopped, interrupted or failed run."""
        training = self.live is not None and self.live.running
        steerable = training or self.status in STEERABLE
        if action == "stop":
            return steerable
        if action == "detach":
            return training
        if action in ("pause", "resume"):
            paused = self.live.paused if training else self.status == "paused"
            return steerable and paused == (action == "resume")
        if action == "resume_run":
            return not training and self.status in RESUMABLE
        if action == "next_chart":
            return self.has_class("-narrow")
        return True

    def action_pause(self) -> None:
        self._steer("pause")

    def action_resume(self) -> None:
        self._steer("unpause")

    def _steer(self, action: str) -> None:
        if self.live is not None:  # trains here: the engine's own flags
            if self.live.paused == (action == "unpause"):
                self.live.toggle_pause()  # the pause is an event: the log and the status say so
        else:
            level = "info" if action == "unpause" else "warning"
            self.view.add_log(level, ask(self.app.store.home, self.run_id, action))  # it answers in its events
        self.tick()

    def action_stop(self) -> None:
        """Asks first; No has the focus, so Enter never stops the run."""
        name = self.view.progress.name or self.run_id
        question = (f"Stop {name}? It stops after its current batch; finished rounds and its last epoch's "
                    f"checkpoint are kept (r resumes it).")
        self.app.push_screen(ConfirmScreen(question), lambda yes: self._stop() if yes else None)

    def _stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.view.add_log("warning", "stopping after this batch; finished rounds are kept")
        elif self.status in STEERABLE:
            self.view.add_log("warning", ask(self.app.store.home, self.run_id, "stop"))
        self.redraw()

    def action_resume_run(self) -> None:
        """`sdd-tui resume ID` in the background; this dashboard follows it from here on."""
        launch = resume_in_background(self.app, self.run_id)
        if launch is None:
            return
        events = self.app.store.events_path(self.run_id)
        if isinstance(self.source, FollowedSource):
            offset = self.source.follower.offset  # what it has read: the resumed process appends after it
        else:
            offset = events.stat().st_size if events.exists() else 0
        self.source = FollowedSource(self.app.store, self.run_id, self.view, offset)
        self.view.add_log("info", f"resuming in process {launch.process.pid} (log {launch.log})")
        self.tick()

    def action_detach(self) -> None:
        self.app.detach_live_run()
        self.tick()

    def action_next_chart(self) -> None:
        charts = [self.query_one(f"#{name}") for name in CHARTS]
        charts[self.shown_chart].remove_class("-shown")
        self.shown_chart = (self.shown_chart + 1) % len(charts)
        charts[self.shown_chart].add_class("-shown")

    def _fill_round_table(self) -> None:
        results = self.view.results
        table = rounds_table(results, "rounds (as sdd-tui runs show)") if results else "no round finished yet"
        self.query_one("#round-table", Static).update(table)

    def action_toggle_table(self) -> None:
        """The charts, or the scrollable table of rounds in their place."""
        shown = self.toggle_class("-table").has_class("-table")
        if shown:
            self._fill_round_table()
            self.query_one("#rounds-view").focus()

    def action_screenshot(self) -> None:
        folder = self.app.store.run_dir(self.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = self.app.save_screenshot(f"{self.run_id}-{time.strftime('%H%M%S')}.svg", str(folder))
        self.notify(f"screenshot saved: {path}")

    def action_export(self) -> None:
        try:
            record = self.app.store.run(self.run_id)
        except SddError as error:
            self.notify(str(error), severity="error")
            return
        from sdd_tui.core.analysis.figures import figure_one, save_figure  # matplotlib: loaded on the first export only

        folder = self.app.store.run_dir(self.run_id)
        csv_path, json_path = folder / f"{self.run_id}.csv", folder / f"{self.run_id}.json"
        figure_path = folder / f"{self.run_id}.png"
        try:
            csv_path.write_text(csv_text(record), encoding="utf-8")
            json_path.write_text(json.dumps(run_json(record, display_status(record)), indent=2), encoding="utf-8")
            if record.rounds:  # the same figure as `sdd-tui plot ID`
                save_figure(figure_one([record]), figure_path)
        except OSError as error:
            self.notify(f"cannot write to {folder} ({error.strerror})", severity="error")
            return
        except SddError as error:
            self.notify(str(error), severity="error")
            return
        written = [p.name for p in (json_path, figure_path) if p.exists()]
        self.notify(f"exported {csv_path} and {', '.join(written)}")

    def action_report(self) -> None:
        from sdd_tui.reporting import write_report_of

        write_report_of(self, [self.run_id])

    def action_back(self) -> None:
        self.app.pop_screen()
