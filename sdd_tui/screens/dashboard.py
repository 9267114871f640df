"""The run dashboard: a run training in the app (live), one followed from its events file, or a finished one.

All three feed a RunView; a timer redraws at most REDRAWS_PER_S times a second, and only when the
view changed.
"""

from __future__ import annotations

import json
import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Footer, Header

from core.errors import SddError
from core.results import csv_text, run_json
from core.store import display_status
from sdd_tui.follow import EventFollower
from sdd_tui.live import LiveRun
from sdd_tui.runview import RunView
from sdd_tui.widgets.charts import DistanceChart, EpochChart, SddChart
from sdd_tui.widgets.panels import EventLog, ProgressPanel

REDRAWS_PER_S = 2  # the text panels (keys redraw at once); every redraw holds the GIL, taken from training
CHART_REDRAWS_PER_S = 1  # a plotext chart costs ~25 ms of the GIL per draw, taken from training
STATUS_CHECK_S = 2.0  # how often a followed run's process is checked for being alive
CHARTS = ("sdd-chart", "epoch-chart", "distance-chart")
LIVE_ACTIONS = ("stop", "detach")


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Resume"),
        Binding("s", "stop", "Stop"),
        Binding("d", "detach", "Detach"),
        Binding("v", "next_chart", "Chart"),
        Binding("c", "screenshot", "Screenshot"),
        Binding("e", "export", "Export"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    def __init__(self, run_id: str, live: LiveRun | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.live = live
        self.view = live.view if live else RunView(run_id=run_id)
        self.follower: EventFollower | None = None
        self.drawn_version = -1
        self.drawn_state: tuple = ()
        self.drawn_rounds: tuple = ()
        self.drawn_epochs: tuple = ()
        self.shown_chart = 0
        self.store_status: str | None = None
        self.status_checked = 0.0
        self.footer_state: tuple = ()
        self.charts_drawn_at = 0.0
        self.charts_pending = False
        self.handover = None  # the background process a detached run was handed to, until it reports

    def compose(self) -> ComposeResult:
        yield Header()
        yield ProgressPanel(id="progress")
        with Container(id="charts"):
            yield SddChart(id="sdd-chart", classes="chart -shown")
            yield EpochChart(id="epoch-chart", classes="chart")
            yield DistanceChart(id="distance-chart", classes="chart")
        yield EventLog(id="log")
        yield Footer()

    def on_mount(self) -> None:
        if self.live is None:
            self.follow()
        self.set_interval(1 / REDRAWS_PER_S, self.tick)
        self.tick()
        if self.live is not None:
            self.call_after_refresh(self.live.start)  # no-op when it already trains

    # ------------------------------------------------------------------ sources

    def follow(self, handover=None) -> None:
        """Read the run from its events file (from the start), and keep following it; `handover` is the
        background process the run was just handed to (until it resumes, the file ends in a stop)."""
        self.live = None
        self.handover = handover
        self.view = RunView(run_id=self.run_id)
        path = self.app.store.events_path(self.run_id)
        self.follower = EventFollower(path)
        if not path.exists():
            try:
                record = self.app.store.get_run(self.run_id)
                self.view.load_record(record, display_status(record))
            except SddError as error:
                self.view.fail(str(error))
        self.drawn_version = -1
        self.drawn_rounds = self.drawn_epochs = ()
        self.refresh_bindings()

    @property
    def handing_over(self) -> bool:
        return self.handover is not None

    def _settle_handover(self) -> None:
        """The hand-over ends when the background process runs the run, or has exited (the app says why
        when it failed). The file is read whole on the first tick: "running" after that is that process's."""
        if self.handover is not None and (self.view.status == "running" or self.handover.poll() is not None):
            self.handover = None

    @property
    def source(self) -> str:
        if self.handing_over:
            return "to a background process"
        if self.live is not None:
            return "live in this app" if self.live.running else "trained in this app"
        return "watching" if self.status in ("running", "starting") else "from the store"

    @property
    def status(self) -> str:
        if self.handing_over:
            return "handing over"
        if self.live is not None and self.live.running and self.live.paused:
            return "paused"
        if self.live is None and self.view.status in ("running", "starting") and self.store_status == "interrupted":
            return "interrupted"
        return self.view.status

    def tick(self) -> None:
        if self.live is not None:
            self.live.drain()
        if self.follower is not None:
            for event in self.follower.read_new():
                self.view.apply(event)
            self._check_store_status()
            self._settle_handover()
        if self.view.version != self.drawn_version or (self.status, self.source) != self.drawn_state:
            self.redraw()
        if self.charts_pending and time.monotonic() - self.charts_drawn_at >= 1 / CHART_REDRAWS_PER_S:
            self.redraw_charts()
        self._refresh_footer()

    def _check_store_status(self) -> None:
        """A followed run whose process died shows as interrupted (checked every few seconds)."""
        now = time.monotonic()
        if self.view.status not in ("running", "starting") or now - self.status_checked < STATUS_CHECK_S:
            return
        self.status_checked = now
        try:
            status = display_status(self.app.store.get_run(self.run_id))
        except SddError:
            return
        if status != self.store_status:
            self.store_status = status
            self.drawn_version = -1

    def redraw(self) -> None:
        view = self.view
        self.drawn_version = view.version
        self.drawn_state = (self.status, self.source)
        with self.app.batch_update():
            self.query_one(ProgressPanel).show(view, self.status, self.source)
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
            epochs_key = (view.progress.round, len(view.epochs), view.epochs[-1].epoch if view.epochs else 0)
            if epochs_key != self.drawn_epochs:
                self.drawn_epochs = epochs_key
                self.query_one(EpochChart).set_points(view.epochs, view.progress.round)

    def _refresh_footer(self) -> None:
        """Rebuild the footer only when the keys that apply change (rebuilding it is costly)."""
        state = (self.live is not None and self.live.running, self.live is not None and self.live.paused)
        if state != self.footer_state:
            self.footer_state = state
            self.refresh_bindings()

    # ------------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        training = self.live is not None and self.live.running
        if action in LIVE_ACTIONS:
            return training
        if action in ("pause", "resume"):
            return training and self.live.paused == (action == "resume")
        if action == "next_chart":
            return self.has_class("-narrow")
        return True

    def action_pause(self) -> None:
        if self.live is not None and self.live.running and not self.live.paused:
            self.live.toggle_pause()
            self.view.add_log("warning", "paused (between batches); p resumes")
            self.redraw()

    def action_resume(self) -> None:
        if self.live is not None and self.live.running and self.live.paused:
            self.live.toggle_pause()
            self.view.add_log("info", "resumed")
            self.redraw()

    def action_stop(self) -> None:
        if self.live is None or not self.live.running:
            return
        self.live.stop()
        self.view.add_log("warning", "stopping after this batch; finished rounds are kept")
        self.redraw()

    def action_detach(self) -> None:
        self.app.detach_live_run()
        self.redraw()

    def action_next_chart(self) -> None:
        charts = [self.query_one(f"#{name}") for name in CHARTS]
        charts[self.shown_chart].remove_class("-shown")
        self.shown_chart = (self.shown_chart + 1) % len(charts)
        charts[self.shown_chart].add_class("-shown")

    def action_screenshot(self) -> None:
        folder = self.app.store.run_dir(self.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = self.app.save_screenshot(f"{self.run_id}-{time.strftime('%H%M%S')}.svg", str(folder))
        self.notify(f"screenshot saved: {path}")

    def action_export(self) -> None:
        try:
            record = self.app.store.get_run(self.run_id)
        except SddError as error:
            self.notify(str(error), severity="error")
            return
        from core.figures import figure_one, save_figure  # matplotlib: loaded on the first export only

        folder = self.app.store.run_dir(self.run_id)
        csv_path, json_path = folder / f"{self.run_id}.csv", folder / f"{self.run_id}.json"
        figure_path = folder / f"{self.run_id}.png"
        try:
            csv_path.write_text(csv_text(record), encoding="utf-8")
            json_path.write_text(json.dumps(run_json(record, display_status(record)), indent=2), encoding="utf-8")
            if record.get("rounds"):  # the same figure as `sdd-tui plot ID`
                save_figure(figure_one([record]), figure_path)
        except OSError as error:
            self.notify(f"cannot write to {folder} ({error.strerror})", severity="error")
            return
        except SddError as error:
            self.notify(str(error), severity="error")
            return
        written = [p.name for p in (json_path, figure_path) if p.exists()]
        self.notify(f"exported {csv_path} and {', '.join(written)}")

    def action_back(self) -> None:
        self.app.pop_screen()
