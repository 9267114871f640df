"""Tables of runs and presets: a DataTable whose Enter shows in the footer as Open, and column fitting.

Cells are text, never markup, with control characters escaped: a run named `[/bold]` or holding an
ESC shows as typed. One column of a table is elastic (a run's name, a preset's description): its text is elided with `…`
to the width the other columns leave, so a long name never pushes them off screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from sdd_tui.core.format import printable

CELL_PADDING = 2  # a DataTable cell has one space each side
SCROLLBAR = 1  # room kept for the vertical scrollbar (app.tcss makes it one cell wide)


class OpenTable(DataTable):
    """Enter opens; Home and End go to the first and last row (DataTable's scroll sideways), as in history."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open"),
        Binding("home", "first_row", "First row", show=False),
        Binding("end", "last_row", "Last row", show=False),
    ]

    def action_first_row(self) -> None:
        self.move_cursor(row=0, animate=False)
        self.scroll_to(x=0, animate=False)

    def action_last_row(self) -> None:
        self.move_cursor(row=max(self.row_count - 1, 0), animate=False)


def _width(cell: object) -> int:
    """A cell's width in terminal cells (an emoji takes two)."""
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))


def elide(text: str, width: int) -> str:
    """`text` cut to `width` terminal cells (an emoji takes two), the last one an ellipsis when it was longer."""
    return text if cell_len(text) <= width else set_cell_size(text, max(width - 1, 0)) + "…"


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[object]],
                  floors: Mapping[str, int] | None = None) -> list[int]:
    """Each column as wide as its header, its widest cell in `rows` and its floor (if any)."""
    floors = floors or {}
    return [max([len(header), floors.get(header, 0), *(_width(row[index]) for row in rows)])
            for index, header in enumerate(headers)]


def set_columns(table: DataTable, headers: Sequence[str], rows: Sequence[Sequence[object]],
                floors: Mapping[str, int] | None = None) -> None:
    """Empty the table and give it these columns, each as wide as its widest cell in `rows` (DataTable's
    own widths only ever grow, and are measured after a paint)."""
    table.clear(columns=True)
    for header, width in zip(headers, column_widths(headers, rows, floors)):
        table.add_column(header, width=width, key=header)


def add_rows(table: DataTable, rows: Sequence[Sequence[object]], keys: Sequence[str]) -> None:
    for key, row in zip(keys, rows):
        table.add_row(*(Text(printable(cell)) if isinstance(cell, str) else cell for cell in row), key=key)


def fill_table(table: DataTable, headers: Sequence[str], rows: Sequence[Sequence[object]], keys: Sequence[str]) -> None:
    """Replace the table's columns and rows, keeping the cursor on the same key."""
    current = None
    if table.row_count:
        current = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    set_columns(table, headers, rows)
    add_rows(table, rows, keys)
    if current in keys:
        table.move_cursor(row=list(keys).index(current), animate=False)


def elastic_width(total: int, headers: Sequence[str], rows: Sequence[Sequence[object]], elastic: int,
                  must_fit: int | None = None, low: int = 5, high: int = 40,
                  floors: Mapping[str, int] | None = None) -> int:
    """The width left for column `elastic` when the first `must_fit` columns (all by default) must fit
    in `total` cells; between `low` and `high`."""
    must_fit = len(headers) if must_fit is None else must_fit
    widths = column_widths(headers, rows, floors)
    used = SCROLLBAR + CELL_PADDING + sum(CELL_PADDING + widths[i] for i in range(must_fit) if i != elastic)
    return max(low, min(high, total - used))


def fit_rows(rows: list[tuple[str, ...]], headers: tuple[str, ...], elastic: int, width: int,
             must_fit: int | None = None, high: int = 40) -> list[tuple[str, ...]]:
    """Rows with their elastic column elided to what `width` leaves it."""
    room = elastic_width(width, headers, rows, elastic, must_fit, high=high)
    return [(*row[:elastic], elide(row[elastic], room), *row[elastic + 1:]) for row in rows]
