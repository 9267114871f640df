"""The rounds table both faces show: the headless summary at a run's end and the dashboard's `t` view."""

from __future__ import annotations

import io

from rich.console import Console

from sdd_tui.core.format import ROUND_COLUMNS, round_cells
from sdd_tui.rounds_table import rounds_table


def rendered(table) -> str:
    console = Console(file=io.StringIO(), width=120, highlight=False)
    console.print(table)
    return console.file.getvalue()


def test_rounds_are_rows_in_round_order_with_the_runs_show_cells():
    rounds = [{"round": r, "sparsity": 1 - 0.8**r, "test_acc": 0.5 + r / 100, "best_test_acc": 0.6,
               "train_acc": 0.9, "noisy_memorized": None, "learning_distance": 1.5 * r} for r in (2, 0, 1)]
    table = rounds_table(rounds, "rounds of dd")
    assert [column.header for column in table.columns] == list(ROUND_COLUMNS)
    cells = [tuple(column._cells[row] for column in table.columns) for row in range(table.row_count)]
    assert cells == [round_cells(r) for r in sorted(rounds, key=lambda r: r["round"])]
    text = rendered(table)
    assert "rounds of dd" in text and text.index("52.0%") > text.index("51.0%") > text.index("50.0%")
