"""A table of any number of runs drawn with Textual's line API: only the rows on screen are made.

DataTable renders each cell through Rich and keeps every row it is given, so a history of 10,000 runs
either takes seconds to fill or has to be fed a page at a time. This table is given all the rows and a
function that makes one row's cells; it makes (and keeps) the cells of the rows it draws. The header
stays on the first line; the cursor is a row; Enter, a click on the highlighted row, a click on a
column title and the cursor moving are messages, as DataTable's are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.cells import set_cell_size
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from sdd_tui.core.format import printable
from sdd_tui.widgets.tables import CELL_PADDING

Cell = str | Text


def cell_segments(cell: Cell, width: int, style: Style, console: Console) -> list[Segment]:
    """A cell cut or padded to `width` terminal cells plus one space each side, in `style` (a Text keeps
    its own styles over it). Text from users is printable() already or made so here."""
    if isinstance(cell, Text):
        text = cell.copy()
        text.truncate(width, pad=True)
        return [Segment(" ", style), *Segment.apply_style(text.render(console), style), Segment(" ", style)]
    return [Segment(f" {set_cell_size(printable(cell), width)} ", style)]


class RunsTable(ScrollView, can_focus=True):
    """Rows are keyed (a run id); `make_cells(row)` gives a row's cells under `columns`."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open"),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First row", show=False),
        Binding("end", "last", "Last row", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]
    COMPONENT_CLASSES = {"runs-table--header", "runs-table--even-row", "runs-table--cursor"}
    DEFAULT_CSS = """
    RunsTable {
        background: $surface;
        color: $foreground;
        width: 100%;
        height: 1fr;
        &:focus {
            background-tint: $foreground 5%;
            & > .runs-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .runs-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .runs-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        &:dark > .runs-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .runs-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .runs-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    cursor_row: reactive[int] = reactive(0, always_update=False, init=False)

    class Highlighted(Message):
        def __init__(self, table: RunsTable, row: int, key: str) -> None:
            super().__init__()
            self.table, self.row, self.key = table, row, key

    class Selected(Message):
        def __init__(self, table: RunsTable, row: int, key: str) -> None:
            super().__init__()
            self.table, self.row, self.key = table, row, key

    class HeaderSelected(Message):
        def __init__(self, table: RunsTable, column: str) -> None:
            super().__init__()
            self.table, self.column = table, column

    def __init__(self, make_cells: Callable[[Any], Sequence[Cell]], key_of: Callable[[Any], str],
                 *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.make_cells = make_cells
        self.key_of = key_of
        self.columns: tuple[str, ...] = ()
        self.widths: list[int] = []
        self.rows: Sequence[Any] = ()
        self._cells: dict[int, Sequence[Cell]] = {}

    # -- content

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def set_rows(self, columns: Sequence[str], widths: Sequence[int], rows: Sequence[Any],
                 cursor_key: str | None = None) -> None:
        """Show `rows` under `columns` of `widths` cells; the cursor goes to `cursor_key`'s row if shown,
        else stays at its index (within the rows)."""
        self.columns, self.widths, self.rows = tuple(columns), list(widths), rows
        self._cells = {}
        width = sum(w + CELL_PADDING for w in self.widths)
        self.virtual_size = Size(width, len(rows) + 1)  # + the header line
        at = None
        if cursor_key is not None:
            at = next((index for index, row in enumerate(rows) if self.key_of(row) == cursor_key), None)
        self.move_cursor(self.cursor_row if at is None else at)
        self.refresh()

    def forget_cells(self) -> None:
        """Make the cells again when drawn (a row's marks changed)."""
        self._cells = {}
        self.refresh()

    @property
    def drawn_rows(self) -> int:
        """How many rows' cells have been made (drawn) since the rows were set."""
        return len(self._cells)

    def cells_at(self, index: int) -> Sequence[Cell]:
        cells = self._cells.get(index)
        if cells is None:
            cells = self._cells[index] = self.make_cells(self.rows[index])
        return cells

    def row_text(self, index: int) -> list[str]:
        """A row's cells as the plain text shown (before being cut to the column widths)."""
        return [cell.plain if isinstance(cell, Text) else printable(cell) for cell in self.cells_at(index)]

    @property
    def cursor_key(self) -> str | None:
        return self.key_of(self.rows[self.cursor_row]) if self.rows else None

    # -- cursor

    def move_cursor(self, row: int) -> None:
        self.cursor_row = max(0, min(row, len(self.rows) - 1)) if self.rows else 0
        self.scroll_to_cursor()

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh()
        if self.rows:
            self.post_message(self.Highlighted(self, new, self.key_of(self.rows[new])))

    def scroll_to_cursor(self) -> None:
        shown = max(self.scrollable_content_region.height - 1, 1)  # rows under the header
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + shown:
            self.scroll_to(y=self.cursor_row - shown + 1, animate=False, immediate=True)

    def _page(self) -> int:
        return max(self.scrollable_content_region.height - 2, 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + self._page())

    def action_first(self) -> None:
        self.move_cursor(0)
        self.scroll_to(x=0, animate=False, immediate=True)

    def action_last(self) -> None:
        self.move_cursor(len(self.rows) - 1)

    def action_select_cursor(self) -> None:
        if self.rows:
            self.post_message(self.Selected(self, self.cursor_row, self.key_of(self.rows[self.cursor_row])))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:  # the header: which column title
            x = offset.x + round(self.scroll_x)
            for column, width in zip(self.columns, self.widths):
                if x < width + CELL_PADDING:
                    self.post_message(self.HeaderSelected(self, column))
                    return
                x -= width + CELL_PADDING
            return
        row = round(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self.rows):
            if row == self.cursor_row:
                self.action_select_cursor()
            else:
                self.move_cursor(row)

    def on_resize(self) -> None:
        self.scroll_to_cursor()

    # -- drawing

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("runs-table--header")
            line = [segment for title, w in zip(self.columns, self.widths)
                    for segment in cell_segments(title, w, style, self.app.console)]
        else:
            index = scroll_y + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, base)
            style = base
            if index == self.cursor_row:
                style = base + self.get_component_rich_style("runs-table--cursor")
            elif index % 2:
                style = base + self.get_component_rich_style("runs-table--even-row")
            line = [segment for cell, w in zip(self.cells_at(index), self.widths)
                    for segment in cell_segments(cell, w, style, self.app.console)]
        strip = Strip(line)
        return strip.crop(scroll_x, scroll_x + width).extend_cell_length(width, style)
