"""Home: the bundled presets and the most recent runs."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from sdd_tui.core.config import load_preset, preset_names
from sdd_tui.core.format import noise_short, pct as _pct, printable, rounds_text, short_ids
from sdd_tui.core.history.run_index import summary
from sdd_tui.core.history.store import display_status
from sdd_tui.widgets.tables import OpenTable, fill_table, fit_rows

RECENT_RUNS = 20
EMPTY_HINT = ("No runs yet: Enter on a preset above opens its form to start one, or n for the highlighted preset "
              "(smoke takes seconds).")
REFRESH_S = 3.0  # runs change status while the home screen is open


PRESET_COLUMNS = ("preset", "data", "model", "rounds x epochs", "about")
RUN_COLUMNS = ("id", "name", "status", "seed", "rounds", "noise", "mode", "best", "dense", "at sparsity", "data",
               "model")
RUN_NAME, RUN_MUST_FIT = 1, 9  # the name is elided so that id ... dense fit the width


def preset_rows() -> list[tuple[str, ...]]:
    """(name, dataset, model, rounds x epochs, description) of each bundled preset; rounds after the dense one."""
    rows = []
    for name in preset_names():
        config = load_preset(name)
        rows.append((name, config.data.name, config.model.name,
                     f"{config.prune.rounds} x {config.train.epochs}", config.description))
    return rows


def run_row(record: dict[str, Any], short_id: str) -> tuple[str, ...]:
    """The cells of one stored run under RUN_COLUMNS (what tells look-alike runs apart comes first)."""
    s = summary(record)
    return (printable(short_id), printable(record.get("name", "?")), display_status(record), str(s["seed"]), rounds_text(s),
            noise_short(s["noise_kind"], s["noise_rate"]), s["retrain_mode"] or "?", _pct(s["best_acc"]),
            _pct(s["dense_acc"]), _pct(s["best_sparsity"], 2), s["dataset"] or "?", s["model"] or "?")


class HomeScreen(Screen):
    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("h", "history", "History"),
        Binding("w", "watch", "Watch"),
        Binding("s", "sweeps", "Sweeps"),
        Binding("tab", "app.focus_next", "Next list"),
        Binding("r", "refresh", "Refresh", show=False),  # it refreshes itself; `?` lists r (room for ? Help at 80)
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Presets: Enter opens a new experiment", classes="section")
        yield OpenTable(id="presets", cursor_type="row", zebra_stripes=True)
        yield Static(id="preset-description")
        yield Label("Recent runs: Enter opens the dashboard", classes="section")
        yield OpenTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(EMPTY_HINT, id="runs-empty")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def on_mount(self) -> None:
        self.sub_title = "home"
        self._presets = preset_rows()
        self._descriptions = {row[0]: row[4] for row in self._presets}
        self.action_refresh()
        self.query_one("#presets", DataTable).focus()
        self.set_interval(REFRESH_S, self._refresh_if_shown)

    def on_resize(self) -> None:
        if self.is_mounted:
            self.action_refresh()  # names and descriptions are elided to the width

    def _refresh_if_shown(self) -> None:
        if self.app.screen is self:
            self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        width = self.size.width or self.app.size.width
        self._fill("#presets", PRESET_COLUMNS, fit_rows(self._presets, PRESET_COLUMNS, 4, width, high=200))
        records = self.app.stored_runs()
        short = short_ids([r["id"] for r in records])
        recent = records[:RECENT_RUNS]
        rows = fit_rows([run_row(r, short[r["id"]]) for r in recent], RUN_COLUMNS, RUN_NAME, width, RUN_MUST_FIT)
        self._fill("#runs", RUN_COLUMNS, rows, [r["id"] for r in recent])
        self.query_one("#runs").display = bool(records)  # no runs: how to start one instead of a bare header
        self.query_one("#runs-empty").display = not records

    def _fill(self, selector: str, columns: tuple[str, ...], rows: list[tuple[str, ...]],
              keys: list[str] | None = None) -> None:
        fill_table(self.query_one(selector, DataTable), columns, rows, keys or [row[0] for row in rows])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "presets" and event.row_key.value:
            self.query_one("#preset-description", Static).update(self._descriptions.get(event.row_key.value, ""))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "presets":
            self._new_experiment(event.row_key.value)
        else:
            self.app.open_run(event.row_key.value)

    def action_new(self) -> None:
        self._new_experiment(self._highlighted("#presets") or preset_names()[0])

    def _highlighted(self, selector: str) -> str | None:
        table = self.query_one(selector, DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _new_experiment(self, preset: str) -> None:
        from sdd_tui.screens.new_experiment import NewExperimentScreen

        self.app.push_screen(NewExperimentScreen(preset))

    def action_history(self) -> None:
        from sdd_tui.screens.history import HistoryScreen

        self.app.push_screen(HistoryScreen())

    def action_sweeps(self) -> None:
        from sdd_tui.screens.sweeps import SweepsScreen

        self.app.push_screen(SweepsScreen())

    def action_watch(self) -> None:
        run_id = self.app.latest_running_run()
        if run_id is None:
            self.notify("no run is training; start one with n, or headless with sdd-tui --preset NAME",
                        severity="warning")
        else:
            self.app.open_run(run_id)
