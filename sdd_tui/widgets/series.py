"""Chart data from stored rounds: pure functions, no Textual, no plotext.

A round's x is core.analysis.sparsity_axis.sparsity_x (-log10 of the remaining fraction), the axis the exported
figures use too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sdd_tui.core.analysis.results import BRANCH_LABELS, BRANCHES
from sdd_tui.core.analysis.sparsity_axis import sparsity_x
from sdd_tui.core.history.grouping import (
    differing_fields,
    flatten,
    group_by_setting as setting_groups,
    mean_std,
    runs_per_round,
)
from sdd_tui.core.history.records import RunRecord, as_run_record

NICE_STEPS = (1.0, 2.0, 2.5, 5.0)


def nice_ticks(low: float, high: float, max_ticks: int = 6, integer: bool = False) -> list[float]:
    """Round-numbered ticks (…, 50, 60, 70; or 0.25 steps; or whole epochs) that cover [low, high],
    at most `max_ticks` of them, the first at or below `low` and the last at or above `high`."""
    if high < low:
        low, high = high, low
    max_ticks = max(max_ticks, 3)
    if high - low < 1e-9:  # one value: a unit around it
        low, high = (low, low + 1) if integer else (low - 1, high + 1)
    span = high - low
    exponent = math.floor(math.log10(span / max(max_ticks - 1, 1)))
    for power in range(exponent, exponent + 3):
        for unit in NICE_STEPS:
            step = unit * 10.0**power
            if integer and (step < 1 or step != int(step)):
                continue
            first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
            if last == first:
                last += 1
            if last - first + 1 <= max_ticks:
                return [round(i * step, 10) for i in range(first, last + 1)]
    raise AssertionError("a step of 100x the span always fits")


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """'50', '2.5', '0.25': no trailing zeros."""
    return [f"{t:g}" for t in ticks]


def percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


@dataclass
class Series:
    label: str
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    marker: str | None = None  # None: the chart's next marker; a branch's line is drawn dashed
    points: bool = False  # drawn as its points only (the best epoch's accuracy nearly follows the last's)

# a branch's test accuracy, drawn dashed as the exported figure draws it (random prune: dotted)
BRANCH_MARKERS = {"reinit": "╌", "ticket": "╌", "random_prune": "┈"}


def round_series(rounds: Iterable[dict[str, Any]], key: str, label: str, scale: float = 100.0,
                 points: bool = False) -> Series:
    """`key` of each round against sparsity_x, skipping rounds where it is missing."""
    series = Series(label, points=points)
    for result in sorted(rounds, key=lambda r: r["round"]):
        value = result.get(key)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        series.xs.append(sparsity_x(result["sparsity"]))
        series.ys.append(scale * value)
    return series


def accuracy_series(rounds: Sequence[dict[str, Any]]) -> list[Series]:
    """The sparse double descent chart's lines: test (last epoch), test (best epoch), train accuracy, and the
    test accuracy of each branch the rounds carry (reinit, ticket, random prune), dashed."""
    lines = [
        round_series(rounds, "test_acc", "test"),
        round_series(rounds, "best_test_acc", "best test", points=True),
        round_series(rounds, "train_acc", "train"),
    ]
    for branch in BRANCHES:
        carried = [{"round": r["round"], "sparsity": r["sparsity"], **r[branch]} for r in rounds
                   if isinstance(r.get(branch), dict)]
        if carried:
            line = round_series(carried, "test_acc", f"{BRANCH_LABELS[branch]} test")
            line.marker = BRANCH_MARKERS[branch]
            lines.append(line)
    return lines


def dense_accuracy(rounds: Sequence[dict[str, Any]]) -> float | None:
    """Test accuracy of round 0 (the dense network) in percent."""
    dense = [r for r in rounds if r["round"] == 0 and r.get("test_acc") is not None]
    return percent(dense[0]["test_acc"]) if dense else None


def downsample(xs: Sequence[float], ys: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """At most `max_points` evenly spaced points, always keeping the first and the last."""
    count = len(xs)
    if count <= max_points or max_points < 2:
        return list(xs), list(ys)
    step = (count - 1) / (max_points - 1)
    index = sorted({round(i * step) for i in range(max_points)})
    return [xs[i] for i in index], [ys[i] for i in index]


# ---------------------------------------------------------------------------- seeds and groups


@dataclass
class RunGroup:
    """Runs of one setting (differing only by seed), drawn as mean +- std."""

    records: list[RunRecord]
    label: str = ""

    @property
    def seeds(self) -> list[int]:
        return [r.config.get("runtime", {}).get("seed", 0) for r in self.records]


def group_by_setting(records: Sequence[RunRecord | dict[str, Any]]) -> list[RunGroup]:
    """Groups of runs that differ only by seed (core.history.grouping's rule), in the order their first run appears."""
    groups = [RunGroup(records) for records in setting_groups([as_run_record(record) for record in records])]
    for group, label in zip(groups, group_labels(groups)):
        group.label = label
    return groups


def group_labels(groups: Sequence[RunGroup]) -> list[str]:
    """A legend label per group: the settings that differ between the groups (`rate=0.2`; a field's last
    name unless two differing fields share it), or the run's name when there is one group; and its n."""
    configs = [flatten(group.records[0].config) for group in groups]
    fields = differing_fields([group.records[0].config for group in groups])
    last_names = [f.rsplit(".", 1)[-1] for f in fields]
    names = [last if last_names.count(last) == 1 else f for f, last in zip(fields, last_names)]
    labels = []
    for group, config in zip(groups, configs):
        parts = [f"{name}={_value_text(config.get(f))}" for name, f in zip(names, fields)]
        text = " ".join(parts) if parts else group.records[0].name or "?"
        labels.append(f"{text} ({group_counts(group)})")
    return labels


def group_counts(group: RunGroup) -> str:
    """'n=6 runs, 3 seeds': the runs measured per round and the distinct seeds among them, apart (a seed
    run twice is two runs, one seed)."""
    runs, seeds = runs_per_round(group.records), len(set(group.seeds))
    return f"n={runs} run{'s' * (runs != 1)}, {seeds} seed{'s' * (seeds != 1)}"


def _value_text(value: Any) -> str:
    return "-" if value is None else str(value)


@dataclass
class MeanCurve:
    xs: list[float]
    mean: list[float]
    std: list[float]
    count: list[int]


def mean_curve(group: RunGroup, key: str = "test_acc", scale: float = 100.0) -> MeanCurve:
    """Per round, the mean and sample std (n - 1) of `key` over the group's runs that reached it."""
    by_round: dict[int, list[tuple[float, float]]] = {}
    for record in group.records:
        for result in record.rounds:
            value = result.get(key)
            if value is not None and math.isfinite(value):
                by_round.setdefault(result["round"], []).append((sparsity_x(result["sparsity"]), scale * value))
    curve = MeanCurve([], [], [], [])
    for round_index in sorted(by_round):
        points = by_round[round_index]
        values = [v for _, v in points]
        curve.xs.append(mean_std([x for x, _ in points])[0])
        mean, std = mean_std(values)
        curve.mean.append(mean)
        curve.std.append(std)
        curve.count.append(len(values))
    return curve
