"""The history's table (sdd_tui.widgets.runs_table): it holds every row but makes the cells of the rows
it draws only; the cursor, Enter, clicks on rows and column titles, and user text drawn as text."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from sdd_tui.widgets.runs_table import RunsTable

ROWS = 5000
COLUMNS = ("id", "name", "best")


class TableApp(App):
    def __init__(self, rows) -> None:
        super().__init__()
        self.rows = rows
        self.made: list[str] = []
        self.messages: list[tuple[str, object]] = []

    def compose(self) -> ComposeResult:
        yield RunsTable(self.cells, lambda row: row["id"], id="table")

    def cells(self, row):
        self.made.append(row["id"])
        return (row["id"], row["name"], f"{row['best']:.1%}")

    def on_mount(self) -> None:
        self.query_one(RunsTable).set_rows(COLUMNS, [8, 12, 6], self.rows)
        self.query_one(RunsTable).focus()

    def on_runs_table_selected(self, event: RunsTable.Selected) -> None:
        self.messages.append(("selected", event.key))

    def on_runs_table_header_selected(self, event: RunsTable.HeaderSelected) -> None:
        self.messages.append(("header", event.column))


def many_rows(count: int = ROWS) -> list[dict]:
    return [{"id": f"run-{index:04d}", "name": f"name {index}", "best": index / count} for index in range(count)]


async def test_only_the_rows_drawn_have_their_cells_made_and_end_reaches_the_last():
    app = TableApp(many_rows())
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(RunsTable)
        assert table.row_count == ROWS
        assert 0 < len(set(app.made)) == table.drawn_rows <= 20  # one screen of rows, not 5,000
        lines = [table.render_line(y).text for y in range(3)]
        assert lines[0].split() == ["id", "name", "best"]
        assert lines[1].startswith(" run-0000 ") and "name 0" in lines[1]
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_row == ROWS - 1 and table.cursor_key == f"run-{ROWS - 1:04d}"
        bottom = table.render_line(table.scrollable_content_region.height - 1).text
        assert f"run-{ROWS - 1:04d}  name {ROWS - 1}" in bottom  # scrolled so that the cursor's row shows
        assert len(set(app.made)) <= 45  # the first screen and the last one
        await pilot.press("home", "pagedown")
        assert 10 <= table.cursor_row < 20  # a page is the rows that fit under the header
        await pilot.press("enter")
        await pilot.pause()
        assert app.messages[-1] == ("selected", table.cursor_key)


async def test_clicks_select_a_title_move_the_cursor_and_open_the_highlighted_row():
    app = TableApp(many_rows(50))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(RunsTable)
        await pilot.click(RunsTable, offset=(12, 0))  # "name": after the 8-cell id and its padding
        await pilot.pause()
        assert app.messages == [("header", "name")]
        await pilot.click(RunsTable, offset=(2, 3))  # the third row
        await pilot.pause()
        assert table.cursor_row == 2 and len(app.messages) == 1
        await pilot.click(RunsTable, offset=(2, 3))  # again: open it
        await pilot.pause()
        assert app.messages[-1] == ("selected", "run-0002")


async def test_new_rows_keep_the_cursor_on_its_key_and_cells_are_cut_to_their_column():
    rows = many_rows(30)
    app = TableApp(rows)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(RunsTable)
        table.move_cursor(7)
        table.set_rows(COLUMNS, [8, 12, 6], list(reversed(rows)), cursor_key="run-0007")
        assert table.cursor_key == "run-0007" and table.cursor_row == 22
        long = [{"id": "x\x1b[2J", "name": Text("a name much longer than twelve"), "best": 0.5}]
        table.make_cells = lambda row: (row["id"], row["name"], "50.0%")
        table.set_rows(COLUMNS, [8, 12, 6], long, cursor_key="gone")
        assert table.cursor_row == 0
        line = table.render_line(1).text
        assert "\x1b" not in line and "x\\x1b[2J" in line  # control characters escaped, never sent raw
        assert "a name much " in line and "longer" not in line  # cut to the 12 cells of its column
