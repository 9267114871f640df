"""Home: the bundled presets and the most recent runs."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from core.config import load_preset, preset_names
from core.format import pct as _pct
from core.results import summary
from core.store import display_status
from sdd_tui.widgets.tables import OpenTable

RECENT_RUNS = 20
REFRESH_S = 3.0  # runs change status while the home screen is open


def preset_rows() -> list[tuple[str, ...]]:
    """(name, dataset, model, rounds x epochs, description) of each bundled preset."""
    rows = []
    for name in preset_names():
        config = load_preset(name)
        rows.append((name, config.data.name, config.model.name,
                     f"{config.prune.rounds + 1} x {config.train.epochs}", config.description))
    return rows


def run_row(record: dict[str, Any]) -> tuple[str, ...]:
    """(name, status, rounds, dense, best, at sparsity, started, id) of one stored run."""
    s = summary(record)
    started = time.strftime("%m-%d %H:%M", time.localtime(record.get("started") or 0))
    return (record.get("name", "?"), display_status(record), f"{s['rounds_done']}/{s['rounds_total']}",
            _pct(s["dense_acc"]), _pct(s["best_acc"]), _pct(s["best_sparsity"]), started, record["id"])


class HomeScreen(Screen):
    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("h", "history", "History"),
        Binding("w", "watch", "Watch"),
        Binding("tab", "app.focus_next", "Next list"),
        Binding("r", "refresh", "Refresh"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Presets: Enter opens a new experiment", classes="section")
        yield OpenTable(id="presets", cursor_type="row", zebra_stripes=True)
        yield Static(id="preset-description")
        yield Label("Recent runs: Enter opens the dashboard", classes="section")
        yield OpenTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "home"
        presets = self.query_one("#presets", DataTable)
        presets.add_columns("preset", "data", "model", "rounds x epochs", "description")
        self._descriptions = {}
        for row in preset_rows():
            presets.add_row(*row[:4], row[4], key=row[0])
            self._descriptions[row[0]] = row[4]
        runs = self.query_one("#runs", DataTable)
        runs.add_columns("name", "status", "rounds", "dense", "best", "at sparsity", "started", "id")
        self.action_refresh()
        presets.focus()
        self.set_interval(REFRESH_S, self._refresh_if_shown)

    def _refresh_if_shown(self) -> None:
        if self.app.screen is self:
            self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        runs = self.query_one("#runs", DataTable)
        current = self._highlighted("#runs")
        runs.clear()
        ids = []
        for record in self.app.store.summaries()[:RECENT_RUNS]:
            runs.add_row(*run_row(record), key=record["id"])
            ids.append(record["id"])
        if current in ids:
            runs.move_cursor(row=ids.index(current), animate=False)

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

    def action_watch(self) -> None:
        run_id = self.app.latest_running_run()
        if run_id is None:
            self.notify("no run is training; start one with n, or headless with sdd-tui --preset NAME",
                        severity="warning")
        else:
            self.app.open_run(run_id)
