"""Sweeps: every stored sweep and the members of the highlighted one; n starts a new sweep in the background.

A sweep runs in its own `sdd-tui sweep` process (started here through core.runs.spawn, or from a shell); this
screen only reads the store (the sweeps' records and the runs' summaries in store.json) every few seconds.
Enter on a member opens its run's dashboard.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from sdd_tui.core.errors import SddError
from sdd_tui.core.format import pct as _pct, printable, rounds_text, short_ids
from sdd_tui.core.history.records import SweepRecord
from sdd_tui.core.history.run_index import summary
from sdd_tui.core.sweeps.sweep import display_sweep_status, member_status, origin_text, sweep_row
from sdd_tui.widgets.tables import OpenTable, elide, fill_table, fit_rows

RESUMABLE = ("stopped", "interrupted", "failed")  # `sdd-tui sweep --resume` runs their unfinished members
REFRESH_S = 2.0  # sweeps run in other processes: their members' statuses change while the screen is open

SWEEP_COLUMNS = ("id", "preset", "status", "done", "packed", "grid x seeds")
SWEEP_GRID = 5  # the elastic column
PRESET_WIDTH = 20  # a long preset name is elided to this
MEMBER_COLUMNS = ("run", "seed", "grid", "status", "rounds", "best", "dense")
MEMBER_GRID = 2


def short_sweep_ids(ids: list[str]) -> dict[str, str]:
    """The shortest unique prefix of each sweep id, at least its date and the hour and minute ("sw-20261130-0612")."""
    bare = short_ids([i.removeprefix("sw-") for i in ids])
    return {i: ("sw-" if i.startswith("sw-") else "") + bare[i.removeprefix("sw-")] for i in ids}


def grid_text(sweep: SweepRecord) -> str:
    """'noise.rate=0.2,0.4 x seeds 0,1,2' (and the levels): what the members are made of."""
    axes = [f"{key}={','.join(values)}" for key, values in (sweep.grid or {}).items()]
    if sweep.levels:
        axes.append(f"levels {','.join(map(str, sweep.levels))}")
    axes.append(f"seeds {','.join(str(s) for s in sweep.seeds)}")
    return " x ".join(axes)


def sweep_table_rows(rows: list[dict[str, Any]], sweeps: dict[str, SweepRecord]) -> list[tuple[str, ...]]:
    """Cells under SWEEP_COLUMNS of each core.sweeps.sweep.sweep_row (`sweeps` by id for the grid)."""
    short = short_sweep_ids([row["id"] for row in rows])
    return [(short[row["id"]], elide(row["preset"], PRESET_WIDTH), row["status"], f"{row['finished']}/{row['members']}",
             "yes" if row["pack"] else "no", grid_text(sweeps[row["id"]])) for row in rows]


def short_point(point: dict[str, str], keys: list[str]) -> str:
    """'rate=0.2 lr=0.01': a grid point by the last part of each key when `keys` (the sweep's grid keys) end
    differently, so that a member's values fit at 80 columns; else by the whole keys."""
    last = [key.rpartition(".")[2] for key in keys]
    names = dict(zip(keys, last)) if len(set(last)) == len(last) else {}
    return " ".join(f"{names.get(key, key)}={value}" for key, value in point.items()) or "-"


def member_table_rows(sweep: SweepRecord, summaries: dict[str, dict[str, Any]],
                      short: dict[str, str]) -> list[tuple[str, ...]]:
    """Cells under MEMBER_COLUMNS of each member, from the store's summaries (store.json's rows: a member not
    yet started is queued, or failed with the error the sweep recorded)."""
    errors = sweep.errors
    keys = list({key: None for member in sweep.members for key in member.get("point") or {}})
    rows = []
    for member in sweep.members:
        record = summaries.get(member["run_id"])
        status = "failed" if record is None and member["run_id"] in errors else member_status(record)
        s = summary(record) if record else None
        rows.append((short.get(member["run_id"], member["run_id"]), str(member["seed"]),
                     short_point(member.get("point") or {}, keys), status,
                     rounds_text(s) if s else "-", _pct(s["best_acc"]) if s else "-",
                     _pct(s["dense_acc"]) if s else "-"))
    return rows


class SweepsScreen(Screen):
    BINDINGS = [
        Binding("n", "new_sweep", "New sweep"),
        Binding("u", "resume", "Resume"),
        Binding("tab", "app.focus_next", "Next list"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sweeps: dict[str, SweepRecord] = {}  # by id, as last read
        self.summaries: dict[str, dict[str, Any]] = {}  # the store's run summaries by id, as last read
        self.shown: str | None = None  # the sweep whose members are listed
        self.resumable = False  # whether the shown sweep can be resumed (u shows in the footer)
        self.told: set[str] = set()  # sweeps of a wrong type already reported (said once, not at every refresh)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Sweeps, newest first: Enter lists the members, n starts a new sweep", classes="section")
        yield OpenTable(id="sweeps", cursor_type="row", zebra_stripes=True)
        yield Static(id="sweep-detail")
        yield Label("Members", id="members-title", classes="section")
        yield OpenTable(id="members", cursor_type="row", zebra_stripes=True)
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def on_mount(self) -> None:
        self.sub_title = "sweeps"
        self.action_refresh()
        self.query_one("#sweeps", DataTable).focus()
        self.set_interval(REFRESH_S, self._refresh_if_shown)

    def on_resize(self) -> None:
        if self.is_mounted:
            self.action_refresh()  # the grid columns are elided to the width

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def _refresh_if_shown(self) -> None:
        if self.app.screen is self:
            self.action_refresh()

    def action_refresh(self) -> None:
        self.check_launches()
        store = self.app.store
        try:
            stored = store.list_sweeps()
            summaries = {doc["id"]: doc for doc in store.summaries()}
        except SddError as error:  # a store another process left corrupt: say so, keep the app
            self.notify(str(error), severity="error", timeout=15)
            return
        sweeps = self._parsed(stored)
        self.sweeps, self.summaries = {sweep.id: sweep for sweep in sweeps}, summaries
        rows = [sweep_row(sweep, summaries) for sweep in sweeps]
        width = self.size.width or self.app.size.width
        table = self.query_one("#sweeps", DataTable)
        cells = fit_rows(sweep_table_rows(rows, self.sweeps), SWEEP_COLUMNS, SWEEP_GRID, width, high=200)
        fill_table(table, SWEEP_COLUMNS, cells, [row["id"] for row in rows])
        self.show_members(self._highlighted_sweep())

    def _parsed(self, stored: list[dict[str, Any]]) -> list[SweepRecord]:
        """The sweeps as typed records; one of a wrong type is left out of the list and said once."""
        sweeps = []
        for sweep in stored:
            try:
                sweeps.append(SweepRecord.parse(sweep))
            except SddError as error:
                if str(error) not in self.told:
                    self.told.add(str(error))
                    self.notify(str(error), severity="error", timeout=15)
        return sweeps

    def _highlighted_sweep(self) -> str | None:
        table = self.query_one("#sweeps", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def show_members(self, sweep_id: str | None) -> None:
        """List the members of `sweep_id` (with its options and log above them), as last read from the store
        (a running member's summary is read from its folder: moving the cursor reads nothing)."""
        detail = self.query_one("#sweep-detail", Static)
        members = self.query_one("#members", DataTable)
        sweep = self.sweeps.get(sweep_id) if sweep_id else None
        self.shown = sweep.id if sweep else None
        resumable = self._shown_row_status() in RESUMABLE
        if resumable != self.resumable:  # Resume only for a sweep that has stopped (the footer is redrawn
            self.resumable = resumable  # when the bindings change: not at every refresh)
            self.refresh_bindings()
        if sweep is None:
            detail.update("no sweeps yet: n starts one (or `sdd-tui sweep --preset NAME --seeds 0-4` in a shell)")
            self.query_one("#members-title", Label).update("Members")
            fill_table(members, MEMBER_COLUMNS, [], [])
            return
        detail.update(Text(printable(self.detail_text(sweep))))
        self.query_one("#members-title", Label).update(
            Text(printable(f"Members of {sweep.id}: Enter opens a run's dashboard")))
        ids = [m["run_id"] for m in sweep.members]
        short = short_ids([*self.summaries, *ids])
        width = self.size.width or self.app.size.width
        rows = fit_rows(member_table_rows(sweep, self.summaries, short), MEMBER_COLUMNS, MEMBER_GRID, width, high=200)
        fill_table(members, MEMBER_COLUMNS, rows, ids)

    def detail_text(self, sweep: SweepRecord) -> str:
        engine = (sweep.engine or "local") + (", packed" if sweep.pack else "")
        log = next((launch.log for launch in self.app.sweep_launches if launch.process.pid == sweep.pid), None)
        return f"{origin_text(sweep)} ({engine})" + (f"; log {log}" if log else "")

    def check_launches(self) -> None:
        """Say once when a sweep started here has exited with an error (e.g. before it could store anything)."""
        for launch in self.app.sweep_launches:
            code = launch.process.poll()
            if code is None or code in (0, 130) or launch.reported:  # 130: stopped (Ctrl-C, kill)
                continue
            launch.reported = True
            lines = launch.log.read_text(encoding="utf-8", errors="replace").strip().splitlines() \
                if launch.log.exists() else []
            last = lines[-1] if lines else "no output"
            self.notify(f"the sweep process {launch.process.pid} exited with {code}: {last} (see {launch.log})",
                        severity="error", timeout=15)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "sweeps" and event.row_key.value != self.shown:
            self.show_members(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "sweeps":
            self.query_one("#members", DataTable).focus()
            return
        run_id = event.row_key.value
        if not self.app.store.has_run(run_id):
            self.notify(f"{run_id} has no run yet (queued, or it failed before it started); it opens once it runs",
                        severity="warning")
            return
        self.app.open_run(run_id)

    def action_new_sweep(self) -> None:
        from sdd_tui.screens.new_sweep import NewSweepScreen

        sweep = self.sweeps.get(self.shown or "")
        self.app.push_screen(NewSweepScreen(sweep.preset if sweep else None))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resume":
            return self.resumable
        return True

    def _shown_row_status(self) -> str | None:
        sweep = self.sweeps.get(self.shown or "")
        return display_sweep_status(sweep) if sweep else None

    def action_resume(self) -> None:
        """`sdd-tui sweep --resume ID` in the background: the unfinished members, packed again if it was."""
        from sdd_tui.screens.new_sweep import launch_sweep

        sweep_id = self.shown
        if sweep_id is None or self._shown_row_status() not in RESUMABLE:
            return
        launch = launch_sweep(self.app, ["sweep", "--resume", sweep_id])
        if launch is not None:
            self.notify(f"resuming {sweep_id} in process {launch.process.pid} (log {launch.log})", timeout=10)

    def action_back(self) -> None:
        self.app.pop_screen()
