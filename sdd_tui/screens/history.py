"""History: every stored run, sortable and filterable; open, delete, select several and compare."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from core.errors import SddError
from core.format import pct as _pct
from core.query import parse_filter_text
from core.results import summary
from core.store import display_status
from sdd_tui.screens.dialogs import ConfirmScreen
from sdd_tui.widgets.tables import OpenTable

# (column title, sort key of a row dict)
COLUMNS = ("", "name", "status", "dataset", "model", "noise", "dense", "best", "at sparsity", "date", "id")
PAGE = 100  # rows added to the table at a time
SORTS = ("date", "name", "status", "dense", "best", "at sparsity", "dataset", "model", "noise")


def first_line(note: str | None) -> str:
    lines = (note or "").strip().splitlines()
    return lines[0] if lines else ""


def history_row(record: dict[str, Any]) -> dict[str, Any]:
    """One table row of a run, with raw values for sorting and text for filtering."""
    s = summary(record)
    return {
        "id": record["id"], "name": record.get("name", "?"), "status": display_status(record),
        "dataset": s["dataset"] or "?", "model": s["model"] or "?", "noise": s["noise"],
        "dense": s["dense_acc"], "best": s["best_acc"], "at sparsity": s["best_sparsity"],
        "date": record.get("started") or 0.0,
        "tags": " ".join("#" + tag for tag in record.get("tags") or []), "note": first_line(record.get("note")),
        "record": record,
    }


def filter_rows(rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Rows matching every `field=value` (also != < > <= >=) and `#tag` word of `text` (core.query, as
    `sdd-tui runs --where`), whose name, status, dataset, model, noise, id, tags or note hold every other word.
    An unknown field is an SddError."""
    query, words = parse_filter_text(text, [r.get("record", r) for r in rows])
    words = [w.lower() for w in words]
    fields = ("name", "status", "dataset", "model", "noise", "id", "tags", "note")
    return [r for r in rows if query.matches(r.get("record", r))
            and all(any(w in str(r.get(f, "")).lower() for f in fields) for w in words)]


def sort_rows(rows: list[dict[str, Any]], column: str, reverse: bool) -> list[dict[str, Any]]:
    """Sorted by `column`; runs without a value (None) go last either way."""
    present = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]
    return sorted(present, key=lambda r: r[column], reverse=reverse) + missing


def row_cells(row: dict[str, Any], selected: bool) -> tuple:
    date = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["date"]))
    name = " ".join(part for part in (row["name"], row["tags"], row["note"] and f"· {row['note']}") if part)
    return (Text("●", style="bold green") if selected else " ", Text(name), row["status"], row["dataset"],
            row["model"], row["noise"], _pct(row["dense"]), _pct(row["best"]), _pct(row["at sparsity"]), date,
            row["id"])


class HistoryScreen(Screen):
    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("c", "compare", "Compare"),
        Binding("x", "delete", "Delete"),
        Binding("slash", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.selected: set[str] = set()
        self.shown: list[dict[str, Any]] = []
        self.sort_column = "date"
        self.sort_reverse = True

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter (/): words, field=value (noise.rate=0.4, best_acc>0.8), #tag", id="filter")
        yield OpenTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Static(id="history-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "history"
        self.query_one("#filter", Input).cursor_blink = self.app.blink
        table = self.query_one("#history", DataTable)
        for title in COLUMNS:
            table.add_column(title, key=title or "selected")
        table.focus()

    def on_screen_resume(self) -> None:  # also when the screen is first shown
        self.reload()

    def reload(self) -> None:
        self.rows = [history_row(r) for r in self.app.store.summaries()]
        self.selected &= {r["id"] for r in self.rows}
        self.refill()

    def refill(self) -> None:
        table = self.query_one("#history", DataTable)
        current = self.highlighted_id()
        try:
            shown = sort_rows(filter_rows(self.rows, self.query_one("#filter", Input).value), self.sort_column,
                              self.sort_reverse)
            problem = ""
        except SddError as error:  # an unknown field or a value of the wrong type, while typing
            shown, problem = [], f"{error}; "
        table.clear()
        self.shown = shown
        at = next((index for index, row in enumerate(shown) if row["id"] == current), None)
        self.add_rows((at or 0) + PAGE)
        if at is not None:
            table.move_cursor(row=at)
        order = "descending" if self.sort_reverse else "ascending"
        self.query_one("#history-status", Static).update(
            f"{problem}{len(shown)} of {len(self.rows)} runs, sorted by {self.sort_column} ({order}); "
            f"{len(self.selected)} selected for compare")

    def add_rows(self, upto: int) -> None:
        """Put rows of `shown` in the table up to `upto`: a page at a time (a DataTable measures every cell it
        holds, so 10,000 rows at once take half a minute)."""
        table = self.query_one("#history", DataTable)
        for row in self.shown[table.row_count:upto]:
            table.add_row(*row_cells(row, row["id"] in self.selected), key=row["id"])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row >= event.data_table.row_count - PAGE // 4:  # near the end: the next page
            self.add_rows(event.data_table.row_count + PAGE)

    def highlighted_id(self) -> str | None:
        table = self.query_one("#history", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_input_changed(self, event: Input.Changed) -> None:
        self.refill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#history", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(event.row_key.value)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column in SORTS:
            self._sort_by(column)

    def _sort_by(self, column: str) -> None:
        self.sort_reverse = not self.sort_reverse if column == self.sort_column else column in ("date", "dense", "best")
        self.sort_column = column
        self.refill()

    def action_sort(self) -> None:
        self._sort_by(SORTS[(SORTS.index(self.sort_column) + 1) % len(SORTS)])

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_toggle_select(self) -> None:
        run_id = self.highlighted_id()
        if run_id is None:
            return
        self.selected ^= {run_id}
        self.refill()

    def action_compare(self) -> None:
        from sdd_tui.screens.compare import CompareScreen

        if not self.selected:
            self.notify("select runs to compare with space first", severity="warning")
            return
        ids = [r["id"] for r in self.rows if r["id"] in self.selected]
        self.app.push_screen(CompareScreen(ids))

    def action_delete(self) -> None:
        run_id = self.highlighted_id()
        if run_id is None:
            return
        row = next(r for r in self.rows if r["id"] == run_id)

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.app.store.delete_run(run_id)
            except SddError as error:
                self.notify(str(error), severity="error")
                return
            self.notify(f"deleted {run_id}")
            self.reload()

        self.app.push_screen(ConfirmScreen(f"Delete run {run_id} ({row['name']}, {row['status']})? "
                                           "Its record and folder are removed."), answered)

    def action_back(self) -> None:
        if self.focused is self.query_one("#filter", Input):
            self.query_one("#history", DataTable).focus()
            return
        self.app.pop_screen()
