"""History: every stored run, sortable and filterable; open, delete, select several and compare.

Rows are added to the table a page at a time as the cursor nears the end (a DataTable measures every
cell it holds: 10,000 rows at once take half a minute); column widths come from every shown row.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from core.errors import SddError
from core.format import elide, first_line, noise_short, pct as _pct, printable, rounds_text, short_ids
from core.query import parse_filter_text
from core.results import summary
from core.store import display_status
from sdd_tui.screens.dialogs import ConfirmScreen
from sdd_tui.widgets.tables import OpenTable, add_rows, elastic_width, set_columns

# Column titles, each also the sort key of a row dict; the id holds the date and time a run started.
COLUMNS = ("id", "name", "status", "seed", "rounds", "noise", "mode", "best", "dense", "at sparsity", "dataset",
           "model")
NAME, MUST_FIT = 1, 8  # the name is elided so that the columns up to best fit the width
SORTS = ("date", "name", "status", "dense", "best", "at sparsity", "seed", "noise", "mode", "dataset", "model")
PAGE = 100  # rows added to the table at a time
PLAIN_COLUMNS = ("status", "rounds", "noise", "mode", "dataset", "model")  # cells that are a row's own text


def history_row(record: dict[str, Any]) -> dict[str, Any]:
    """One table row of a run, with raw values for sorting and text for filtering."""
    s = summary(record)
    return {
        "id": record["id"], "name": record.get("name", "?"), "status": display_status(record),
        "seed": s["seed"], "rounds": rounds_text(s), "noise": noise_short(s["noise_kind"], s["noise_rate"]),
        "mode": s["retrain_mode"] or "?", "dataset": s["dataset"] or "?", "model": s["model"] or "?",
        "dense": s["dense_acc"], "best": s["best_acc"], "at sparsity": s["best_sparsity"],
        "date": record.get("started") or 0.0,
        "tags": " ".join("#" + tag for tag in record.get("tags") or []), "note": first_line(record.get("note")),
        "record": record,
    }


def filter_rows(rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Rows matching every `field=value` (also != < > <= >=) and `#tag` word of `text` (core.query, as
    `sdd-tui runs --where`), whose id, name, status, dataset, model, noise, mode, tags or note hold every
    other word. An unknown field is an SddError."""
    query, words = parse_filter_text(text, [r.get("record", r) for r in rows])
    words = [w.lower() for w in words]
    fields = ("name", "status", "dataset", "model", "noise", "mode", "id", "tags", "note")
    return [r for r in rows if query.matches(r.get("record", r))
            and all(any(w in str(r.get(f, "")).lower() for f in fields) for w in words)]


def column_needs(rows: list[dict[str, Any]], short: dict[str, str], selected: set[str]) -> dict[str, int]:
    """The width each column but the name needs for every row, not only the first page's (a later page can
    hold an interrupted run): measured on the rows' own values, without making their cells."""
    needs = {column: max((len(str(row[column])) for row in rows), default=0) for column in PLAIN_COLUMNS}
    needs["seed"] = max((len(str(row["seed"])) for row in rows), default=0)
    needs["id"] = max((len(short[row["id"]]) + (row["id"] in selected) for row in rows), default=0)  # ● marks
    return needs


def sort_rows(rows: list[dict[str, Any]], column: str, reverse: bool) -> list[dict[str, Any]]:
    """Sorted by `column`; runs without a value (None) go last either way."""
    present = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]
    return sorted(present, key=lambda r: r[column], reverse=reverse) + missing


def row_cells(row: dict[str, Any], selected: bool, short_id: str) -> tuple:
    """The cells of a row; its name cell also holds its tags and the first line of its note."""
    short_id = printable(short_id)
    marked = Text(short_id) + Text("●", style="bold green") if selected else short_id  # selected for compare
    name = " ".join(part for part in (row["name"], row["tags"], row["note"] and f"· {row['note']}") if part)
    return (marked, printable(name), row["status"],
            str(row["seed"]), row["rounds"], row["noise"], row["mode"], _pct(row["best"]), _pct(row["dense"]),
            _pct(row["at sparsity"], 2), row["dataset"], row["model"])




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
        self.shown: list[dict[str, Any]] = []  # the rows the filter lets through, in order; the table holds
        self.short: dict[str, str] = {}  # the first pages of them
        self.name_room = 0
        self.laid_out_for = 0  # the width the columns were fitted to
        self.sort_column = "date"
        self.sort_reverse = True

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter (/): words, field=value (noise.rate=0.4, best_acc>0.8), #tag", id="filter")
        yield OpenTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Static(id="history-status")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def on_mount(self) -> None:
        self.sub_title = "history"
        self.query_one("#filter", Input).cursor_blink = self.app.blink
        self.query_one("#history", DataTable).focus()

    def on_screen_resume(self) -> None:  # also when the screen is first shown
        self.reload()

    def on_resize(self) -> None:
        width = self.size.width or self.app.size.width
        if self.is_mounted and width != self.laid_out_for:
            self.refill()  # names are elided to the width

    def reload(self) -> None:
        self.rows = [history_row(r) for r in self.app.stored_runs()]
        self.short = short_ids([r["id"] for r in self.rows])
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
        self.shown = shown
        at = next((index for index, row in enumerate(shown) if row["id"] == current), None)
        first = self.cells_of(shown[: (at or 0) + PAGE])  # the columns are sized by the rows shown first
        self.laid_out_for = self.size.width or self.app.size.width
        needs = column_needs(shown, self.short, self.selected)
        self.name_room = elastic_width(self.laid_out_for, COLUMNS, first, NAME, MUST_FIT, floors=needs)
        fitted = [self.fit(cells) for cells in first]
        set_columns(table, COLUMNS, fitted, floors=needs)
        add_rows(table, fitted, [row["id"] for row in shown[: len(first)]])  # the first page: cells made once
        if at is not None:
            table.move_cursor(row=at, animate=False)
        order = "descending" if self.sort_reverse else "ascending"
        self.query_one("#history-status", Static).update(Text(
            f"{printable(problem)}{len(shown)} of {len(self.rows)} runs, sorted by {self.sort_column} ({order}); "
            f"{len(self.selected)} selected for compare"))

    def cells_of(self, rows: list[dict[str, Any]]) -> list[tuple]:
        return [row_cells(row, row["id"] in self.selected, self.short[row["id"]]) for row in rows]

    def fit(self, cells: tuple) -> tuple:
        """The name cell elided to the room the other columns leave it."""
        return (*cells[:NAME], elide(cells[NAME], self.name_room), *cells[NAME + 1:])

    def add_page(self, upto: int) -> None:
        """Put the shown rows in the table up to `upto`, a page at a time (cells are made only for them)."""
        table = self.query_one("#history", DataTable)
        rows = self.shown[table.row_count:upto]
        add_rows(table, [self.fit(cells) for cells in self.cells_of(rows)], [row["id"] for row in rows])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row >= event.data_table.row_count - PAGE // 4:  # near the end: the next page
            self.add_page(event.data_table.row_count + PAGE)

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
