"""The one sparsity axis of every chart: the exported figures (core.analysis.figures, the sweep figure included)
and the app's terminal charts (sdd_tui.widgets.charts) place a round at the same x and label the same ticks.

x is -log10 of the remaining-weight fraction: 0 for the dense network, 1 at 90% sparsity, 2 at 99%, so the
interesting high-sparsity end is spread out and sparsity grows to the right. Ticks are labelled as sparsity
percentages. Plain arithmetic: no torch, no UI, no plotting library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Sparsities worth a tick, in percent; an axis keeps those that fit its range and width.
TICK_SPARSITIES = (0, 20, 50, 80, 90, 95, 98, 99, 99.5, 99.8, 99.9, 99.95, 99.98, 99.99)
AXIS_LABEL = "sparsity (log scale of the remaining-weight fraction)"
SHORTEST_AXIS = 0.3  # x: an axis spans at least 0-50% sparsity, so a run's first rounds are not stretched wide


def sparsity_x(sparsity: float) -> float:
    """-log10 of the remaining fraction of weights (clipped, so a fully pruned net stays finite)."""
    return -math.log10(max(1.0 - sparsity, 1e-12))


def sparsity_ticks(x_max: float, max_ticks: int = 8) -> tuple[list[float], list[str]]:
    """Ticks up to `x_max` (and the next one past it) labelled as sparsity %, at most `max_ticks`."""
    ticks = [(sparsity_x(s / 100), s) for s in TICK_SPARSITIES]
    chosen = [t for t in ticks if t[0] <= x_max + 1e-9] + [t for t in ticks if t[0] > x_max + 1e-9][:1]
    if len(chosen) > max(2, max_ticks):  # evenly thinned, first and last kept
        step = (len(chosen) - 1) / (max(2, max_ticks) - 1)
        chosen = [chosen[round(i * step)] for i in range(max(2, max_ticks))]
    return [x for x, _ in chosen], [f"{s:g}%" for _, s in chosen]


@dataclass(frozen=True)
class SparsityAxis:
    """Where a chart's sparsity axis puts its ticks, what they say, and the x range it shows."""

    ticks: list[float]
    labels: list[str]
    limits: tuple[float, float]


def sparsity_axis(x_max: float, max_ticks: int = 8) -> SparsityAxis:
    """The axis for data reaching `x_max` (a sparsity_x): it ends at its last tick or the data, whichever is
    further, so the sparsest round is never on the edge."""
    ticks, labels = sparsity_ticks(max(x_max, SHORTEST_AXIS), max_ticks)
    return SparsityAxis(ticks, labels, (0.0, max(x_max, ticks[-1]) * 1.02))
