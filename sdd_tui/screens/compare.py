"""Compare: the selected runs' curves on one chart; runs differing only by seed drawn as mean +- std."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from sdd_tui.core.errors import SddError
from sdd_tui.core.format import printable
from sdd_tui.core.history.grouping import mean_std, runs_per_round
from sdd_tui.widgets.charts import COMPARE_METRICS, LINE_COLORS, CompareChart, group_number
from sdd_tui.widgets.series import RunGroup, group_by_setting


def _pm(values: list[float]) -> str:
    """Mean ± sample std (core.history.grouping.mean_std, as `plot` and `sweeps show`); one value alone."""
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{mean:.1f}" if len(values) == 1 else f"{mean:.1f}±{std:.1f}"


def group_table(groups: list[RunGroup]) -> Table:
    """Per group: runs, dense and best test accuracy (mean ± std over seeds), and where the best is."""
    table = Table(box=None, pad_edge=False, expand=True)
    for column in ("group", "n", "seeds", "dense %", "best %", "best at sparsity"):
        table.add_column(column, no_wrap=column != "group", ratio=3 if column == "group" else None)
    for index, group in enumerate(groups):
        dense, best, where = [], [], []
        for record in group.records:
            rounds = record.rounds
            scored = [r for r in rounds if r.get("test_acc") is not None]
            dense += [100 * r["test_acc"] for r in scored if r["round"] == 0]
            if scored:
                top = max(scored, key=lambda r: r["test_acc"])
                best.append(100 * top["test_acc"])
                where.append(100 * top["sparsity"])
        color = LINE_COLORS[index % len(LINE_COLORS)]
        legend = Text("■", style=color) + Text(f" {group_number(index)} {printable(group.label)}")
        table.add_row(legend, str(runs_per_round(group.records)),
                      ",".join(map(str, sorted(set(group.seeds)))), _pm(dense), _pm(best), _pm(where))
    return table


class CompareScreen(Screen):
    BINDINGS = [
        Binding("m", "next_metric", "Metric"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.metric = "test_acc"
        self.groups: list[RunGroup] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield CompareChart(id="compare-chart")
        yield Static(id="compare-table")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def on_mount(self) -> None:
        records = []
        for run_id in self.run_ids:
            try:
                records.append(self.app.store.run(run_id))
            except SddError as error:
                self.notify(str(error), severity="warning")
        self.groups = group_by_setting(records)
        groups = len(self.groups)
        self.sub_title = f"compare {len(records)} runs in {groups} group{'' if groups == 1 else 's'}"
        self.query_one("#compare-table", Static).update(group_table(self.groups))
        self.query_one(CompareChart).set_groups(self.groups, self.metric)

    def action_next_metric(self) -> None:
        metrics = list(COMPARE_METRICS)
        self.metric = metrics[(metrics.index(self.metric) + 1) % len(metrics)]
        self.query_one(CompareChart).set_groups(self.groups, self.metric)

    def action_back(self) -> None:
        self.app.pop_screen()

