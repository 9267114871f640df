"""Phases of a sparse double descent curve (light, critical, sweet, collapsed) for the chart.

`phases_for_chart` is the one call the charts make; it uses the simple local rule below until the
engine's own detection (core.analysis) is available, then it can be swapped in here alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MARGIN = 0.01  # one accuracy point: smaller moves are noise, not a phase


@dataclass(frozen=True)
class PhaseSpan:
    name: str  # light | critical | sweet | collapsed
    first: float  # sparsity of the phase's first round
    last: float  # sparsity of its last round


def phases_for_chart(rounds: Sequence[dict[str, Any]]) -> list[PhaseSpan]:
    """The phases to mark on the chart; [] while the curve does not show them yet."""
    return simple_phases(rounds)


def simple_phases(rounds: Sequence[dict[str, Any]]) -> list[PhaseSpan]:
    """Dip below dense (critical), rise to the peak (sweet), fall past it (collapsed).

    The dip is the worst round before the best one; the sweet phase lasts while accuracy stays
    above halfway between dip and peak; only a dip and a rise of more than MARGIN count.
    """
    scored = sorted((r for r in rounds if r.get("test_acc") is not None), key=lambda r: r["round"])
    if len(scored) < 5 or scored[0]["round"] != 0:
        return []
    acc = [r["test_acc"] for r in scored]
    sparsity = [r["sparsity"] for r in scored]
    peak = max(range(1, len(acc)), key=lambda i: acc[i])
    if peak < 2:
        return []
    dip = min(range(1, peak), key=lambda i: acc[i])
    if acc[dip] > acc[0] - MARGIN or acc[peak] < acc[dip] + MARGIN:
        return []
    critical = next(i for i in range(1, dip + 1) if acc[i] <= acc[0] - MARGIN)
    halfway = (acc[dip] + acc[peak]) / 2
    sweet_end = peak
    while sweet_end + 1 < len(acc) and acc[sweet_end + 1] >= halfway:
        sweet_end += 1
    spans = [("light", 0, critical - 1), ("critical", critical, dip), ("sweet", dip + 1, sweet_end)]
    if sweet_end + 1 < len(acc):
        spans.append(("collapsed", sweet_end + 1, len(acc) - 1))
    return [PhaseSpan(name, sparsity[a], sparsity[b]) for name, a, b in spans if a <= b]
