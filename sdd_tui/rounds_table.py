"""The table of a run's finished rounds, as a Rich table: printed by the headless face at the end of a run and
shown by the dashboard's `t` view; the same columns and cells as `sdd-tui runs show` (core.format)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from sdd_tui.core.format import ROUND_COLUMNS, round_cells


def rounds_table(results: list[dict[str, Any]], title: str) -> Table:
    """One row per finished round, in round order, whatever order they were stored in."""
    table = Table(title=title)
    for column in ROUND_COLUMNS:
        table.add_column(column, justify="right")
    for result in sorted(results, key=lambda r: r["round"]):
        table.add_row(*round_cells(result))
    return table
