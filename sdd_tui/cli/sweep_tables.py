"""How `sdd-tui sweep` and `sdd-tui sweeps` print a sweep: member tables and mean +- std curves."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from sdd_tui.core.format import pct as _pct, printable
from sdd_tui.core.history.records import RunRecord, SweepRecord
from sdd_tui.core.history.run_index import summary
from sdd_tui.core.history.store import Store
from sdd_tui.core.sweeps.sweep import group_by_point, member_records, member_status, point_label


def print_sweep_rows(rows: list[dict]) -> None:
    table = Table(box=None)
    for column in ("id", "name", "engine", "status", "finished", "created"):
        table.add_column(column, no_wrap=column in ("id", "created"))
    for row in rows:
        created = time.strftime("%m-%d %H:%M", time.localtime(row["created"] or 0))
        table.add_row(printable(row["id"]), printable(row["name"]), row["engine"], row["status"], f"{row['finished']}/{row['members']}",
                      created)
    Console(highlight=False, markup=False).print(table)


def records_in_order(store: Store, sweep: SweepRecord) -> list[RunRecord | None]:
    records = member_records(store, sweep)
    return [records.get(m["run_id"]) for m in sweep.members]


def print_members(store: Store, sweep: SweepRecord, console: Console | None = None) -> None:
    """A row per member, under a line naming its grid point."""
    console = console or Console(highlight=False, markup=False)
    table = Table(title="members", box=None, title_justify="left")
    for column in ("run", "seed", "status", "rounds", "dense", "best", "at sparsity"):
        table.add_column(column, no_wrap=column != "run")
    errors = sweep.errors
    records = member_records(store, sweep)
    for point, members in group_by_point(sweep.members):
        if point:
            table.add_row(printable(point_label(point)))
        for member in members:
            record = records.get(member["run_id"])
            status = "failed" if record is None and member["run_id"] in errors else member_status(record)
            s = summary(record) if record else None
            cells = [f"{s['rounds_done']}/{s['rounds_total']}", _pct(s["dense_acc"]), _pct(s["best_acc"]),
                     _pct(s["best_sparsity"])] if s else ["-"] * 4
            table.add_row(printable(member["run_id"]), str(member["seed"]), status, *cells)
    console.print(table)
    for run_id, error in errors.items():
        console.print(printable(f"{run_id}: {error}"))


def _band(row: dict, metric: str) -> str:
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    return "-" if mean is None else f"{100 * mean:.1f} ± {100 * std:.1f}"


def curve_table(curve: dict) -> Table:
    seeds = ",".join(str(s) for s in curve["seeds"])
    table = Table(title=printable(f"{curve['label']}: mean ± std over seeds {seeds}"), box=None, title_justify="left")
    for column in ("round", "sparsity", "seeds", "test %", "best test %", "train %", "memorised %"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in curve["rounds"]:
        table.add_row(str(row["round"]), f"{100 * row['sparsity']:.2f}%", str(row["seeds"]), _band(row, "test_acc"),
                      _band(row, "best_test_acc"), _band(row, "train_acc"), _band(row, "noisy_memorized"))
    return table
