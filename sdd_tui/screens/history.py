"""History: every stored run, sortable and filterable; open, delete, select several and compare.

The table (sdd_tui.widgets.runs_table) holds every shown run but makes the cells of the rows it draws
only, so 10,000 runs open as fast as 100; column widths come from every shown row's values.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from sdd_tui.core.errors import SddError
from sdd_tui.core.format import first_line, noise_short, pct as _pct, printable, rounds_text, short_ids
from sdd_tui.core.history.query import parse_filter_text
from sdd_tui.core.history.run_index import summary
from sdd_tui.core.history.store import display_status
from sdd_tui.screens.dialogs import ConfirmScreen
from sdd_tui.widgets import tables
from sdd_tui.widgets.runs_table import RunsTable

# Column titles, each also the sort key of a row dict; the id holds the date and time a run started.
COLUMNS = ("id", "name", "status", "seed", "rounds", "noise", "mode", "best", "dense", "at sparsity", "dataset",
           "model")
NAME, MUST_FIT = 1, 9  # the name is elided so that the columns up to dense fit the width
SORTS = ("date", "name", "status", "dense", "best", "at sparsity", "seed", "noise", "mode", "dataset", "model")
PLAIN_COLUMNS = ("status", "rounds", "noise", "mode", "dataset", "model")  # cells that are a row's own text
PERCENT_COLUMNS = {"best": 1, "dense": 1, "at sparsity": 2}  # digits after the point


def history_row(record: dict[str, Any]) -> dict[str, Any]:
    """One table row of a run, with raw values for sorting and text for filtering."""
    s = summary(record)
    row = {
        "id": record["id"], "name": record.get("name", "?"), "status": display_status(record),
        "seed": s["seed"], "rounds": rounds_text(s), "noise": noise_short(s["noise_kind"], s["noise_rate"]),
        "mode": s["retrain_mode"] or "?", "dataset": s["dataset"] or "?", "model": s["model"] or "?",
        "dense": s["dense_acc"], "best": s["best_acc"], "at sparsity": s["best_sparsity"],
        "date": record.get("started") or 0.0,
        "tags": " ".join("#" + tag for tag in record.get("tags") or []), "note": first_line(record.get("note")),
        "record": record,
    }
    row["label"] = printable(" ".join(part for part in (row["name"], row["tags"], row["note"] and f"· {row['note']}")
                                      if part))  # the name cell: name, tags, the note's first line
    return row


def filter_rows(rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Rows matching every `field=value` (also != < > <= >=) and `#tag` word of `text` (core.history.query, as
    `sdd-tui runs --where`), whose id, name, status, dataset, model, noise, mode, tags or note hold every
    other word. An unknown field is an SddError."""
    query, words = parse_filter_text(text, [r.get("record", r) for r in rows])
    words = [w.lower() for w in words]
    fields = ("name", "status", "dataset", "model", "noise", "mode", "id", "tags", "note")
    return [r for r in rows if query.matches(r.get("record", r))
            and all(any(w in str(r.get(f, "")).lower() for f in fields) for w in words)]


def column_needs(rows: list[dict[str, Any]], short: dict[str, str], selected: set[str]) -> dict[str, int]:
    """The width each column needs for every row (a later row can hold an interrupted run), measured on
    the rows' own values, without making their cells; the name's is its whole text."""
    def widest(values) -> int:  # in terminal cells: an emoji takes two
        return max(map(cell_len, map(str, set(values))), default=0)

    needs = {column: widest(row[column] for row in rows) for column in (*PLAIN_COLUMNS, "seed", "label")}
    needs["name"] = needs.pop("label")
    needs["id"] = max((len(short[row["id"]]) + (row["id"] in selected) for row in rows), default=0)  # ● marks
    for column, digits in PERCENT_COLUMNS.items():  # a percentage is never shorter for a larger value
        needs[column] = len(_pct(max((row[column] for row in rows if row[column] is not None), default=None),
                                 digits))
    return needs


def column_widths(needs: dict[str, int], total: int) -> list[int]:
    """Each column as wide as its title and its widest value; the name gets what the columns up to best
    leave of `total` cells (sdd_tui.widgets.tables.elastic_width), or less when every name is shorter."""
    widths = tables.column_widths(COLUMNS, [], needs)
    room = tables.elastic_width(total, COLUMNS, [], NAME, MUST_FIT, floors=needs)
    widths[NAME] = max(len(COLUMNS[NAME]), min(room, needs.get("name", 0)))
    return widths


def sort_rows(rows: list[dict[str, Any]], column: str, reverse: bool) -> list[dict[str, Any]]:
    """Sorted by `column`; runs without a value (None) go last either way."""
    present = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]
    return sorted(present, key=lambda r: r[column], reverse=reverse) + missing


def sort_marked(columns: tuple[str, ...], sort_column: str, reverse: bool) -> list[str]:
    """The column titles, the sorted one marked ▲ (ascending) or ▼ (descending); the id stands for the date."""
    sorted_title = "id" if sort_column == "date" else sort_column
    mark = "▼" if reverse else "▲"
    return [f"{title} {mark}" if title == sorted_title else title for title in columns]


def row_cells(row: dict[str, Any], selected: bool, short_id: str, name_width: int) -> tuple:
    """The cells of a row; its name cell also holds its tags and the first line of its note, elided to
    `name_width`."""
    short_id = printable(short_id)
    marked = Text(short_id) + Text("●", style="bold green") if selected else short_id  # selected for compare
    return (marked, tables.elide(row["label"], name_width), row["status"],
            str(row["seed"]), row["rounds"], row["noise"], row["mode"], _pct(row["best"]), _pct(row["dense"]),
            _pct(row["at sparsity"], 2), row["dataset"], row["model"])


class HistoryScreen(Screen):
    AUTO_FOCUS = "#history"  # the table, not the filter (each change of focus redraws the footer)
    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("c", "compare", "Compare"),
        Binding("R", "report", "Report"),
        Binding("x", "delete", "Delete"),
        Binding("slash", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.selected: set[str] = set()
        self.shown: list[dict[str, Any]] = []  # the rows the filter lets through, in order (the table's)
        self.short: dict[str, str] = {}
        self.name_width = 0
        self.laid_out_for = 0  # the width the columns were fitted to
        self.sort_column = "date"
        self.sort_reverse = True
        self.filtered_by = ""  # the filter the rows were last shown for

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter (/): words, field=value (noise.rate=0.4, best_acc>0.8), #tag", id="filter")
        yield RunsTable(self.cells_of, lambda row: row["id"], id="history")
        yield Static(id="history-status")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def on_mount(self) -> None:
        self.sub_title = "history"
        self.query_one("#filter", Input).cursor_blink = self.app.blink

    @property
    def table(self) -> RunsTable:
        return self.query_one("#history", RunsTable)

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
        try:
            shown = sort_rows(filter_rows(self.rows, self.query_one("#filter", Input).value), self.sort_column,
                              self.sort_reverse)
            problem = ""
        except SddError as error:  # an unknown field or a value of the wrong type, while typing
            shown, problem = [], f"{error}; "
        filter_text = self.query_one("#filter", Input).value
        if filter_text != self.filtered_by:  # a new filter: the table from its first column again
            self.filtered_by = filter_text
            self.table.scroll_to(x=0, animate=False, immediate=True)
        self.shown = shown
        self.laid_out_for = self.size.width or self.app.size.width
        titles = sort_marked(COLUMNS, self.sort_column, self.sort_reverse)
        needs = column_needs(shown, self.short, self.selected)
        for column, title in zip(COLUMNS, titles):  # room for the sorted column's mark
            needs[column] = max(needs.get(column, 0), len(title))
        widths = column_widths(needs, self.laid_out_for)
        widths[NAME] = max(widths[NAME], len(titles[NAME]))
        self.name_width = widths[NAME]
        self.table.set_rows(titles, widths, shown, cursor_key=self.highlighted_id())
        order = "descending" if self.sort_reverse else "ascending"
        self.query_one("#history-status", Static).update(Text(
            f"{printable(problem)}{len(shown)} of {len(self.rows)} runs, sorted by {self.sort_column} ({order}); "
            f"{len(self.selected)} selected for compare"))

    def cells_of(self, row: dict[str, Any]) -> tuple:
        return row_cells(row, row["id"] in self.selected, self.short[row["id"]], self.name_width)

    def highlighted_id(self) -> str | None:
        return self.table.cursor_key

    def on_input_changed(self, event: Input.Changed) -> None:
        self.refill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def on_runs_table_selected(self, event: RunsTable.Selected) -> None:
        self.app.open_run(event.key)

    def on_runs_table_header_selected(self, event: RunsTable.HeaderSelected) -> None:
        title = event.column.rstrip(" ▲▼")
        column = "date" if title == "id" else title  # an id is the date and time it started
        if column in SORTS:
            self._sort_by(column)

    def _sort_by(self, column: str) -> None:
        self.sort_reverse = not self.sort_reverse if column == self.sort_column else column in ("date", "dense", "best")
        self.sort_column = column
        self.refill()

    def action_sort(self) -> None:
        """The next sort key, in its natural direction (newest, best and dense first; names A to Z)."""
        self._sort_by(SORTS[(SORTS.index(self.sort_column) + 1) % len(SORTS)])

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self.refill()

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

    def action_report(self) -> None:
        from sdd_tui.reporting import write_report_of

        selected = [r["id"] for r in self.rows if r["id"] in self.selected]
        write_report_of(self, selected or [run_id for run_id in [self.highlighted_id()] if run_id])

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
            self.table.focus()
            return
        self.app.pop_screen()
