"""Phases of a sparse double descent curve (light, critical, sweet, collapsed) for the chart.

`phases_for_chart` is the one call the charts make; it uses the engine's own detection
(core.analysis.phases.detect_phases), so the chart, `runs show` and exported figures agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PhaseSpan:
    name: str  # light | critical | sweet | collapsed
    first: float  # sparsity of the phase's first round
    last: float  # sparsity of its last round


def phases_for_chart(rounds: Sequence[dict[str, Any]]) -> list[PhaseSpan]:
    """The phases to mark on the chart; [] while the curve does not show them yet."""
    from sdd_tui.core.analysis.phases import detect_phases

    found = detect_phases(list(rounds))
    if not found.get("double_descent"):
        return []
    return [PhaseSpan(p["name"], p["from_sparsity"], p["to_sparsity"]) for p in found.get("phases", [])]
