"""The numbers of the report (`core.analysis.report`): seed-group statistics, correlations, reinit-versus-ticket rounds
and the paper's reference values. Plain data in, plain data out; no figure, no page.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..format import pct
from ..history.grouping import flatten
from .figures import Curve, SeedGroup, group_curve

REFERENCE_FILE = Path(__file__).with_name("paper_reference.toml")
MIN_CORRELATION_POINTS = 3


def mean_text(curve: Curve, round_index: int | None, digits: int = 1) -> str:
    """'76.5% ± 1.2 (n=3)': the group's mean and sample std at a round; '-' when it has none."""
    if round_index is None or round_index not in curve.rounds:
        return "-"
    at = curve.rounds.index(round_index)
    count = curve.count[at]
    spread = f" ± {100 * curve.std[at]:.{digits}f}" if count > 1 else ""
    return f"{pct(curve.mean[at], digits)}{spread} (n={count})"


def point_text(curve: Curve, point: dict[str, Any] | None) -> str:
    """A phase event of the group's mean curve: its accuracy (mean ± std, n) at its sparsity and round."""
    if not point:
        return "-"
    return f"{mean_text(curve, point['round'])} at {pct(point['sparsity'], 2)} (round {point['round']})"


# ---------------------------------------------------------------------------- correlation


@dataclass(frozen=True)
class Correlation:
    over: str  # "all rounds" or a phase's name
    count: int
    spearman: float | None  # None when undefined
    pearson: float | None
    why_not: str = ""


def average_ranks(values: list[float]) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (what Spearman's rho ranks by)."""
    array = np.asarray(values, dtype=float)
    _, inverse, counts = np.unique(array, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # the rank of each distinct value's last occurrence
    return ((upper - (counts - 1) / 2)[inverse]).astype(float)


def correlation(over: str, first: list[float], second: list[float]) -> Correlation:
    """Spearman's rho (Pearson of average ranks) and Pearson's r of two equally long series (numpy's corrcoef;
    scipy.stats would add seconds of import to every report); undefined under 3 points or for a constant one."""
    count = len(first)
    if count < MIN_CORRELATION_POINTS:
        return Correlation(over, count, None, None, f"needs {MIN_CORRELATION_POINTS} rounds or more")
    if len(set(first)) < 2 or len(set(second)) < 2:
        return Correlation(over, count, None, None, "undefined: one series is constant")
    pearson = float(np.corrcoef(first, second)[0, 1])
    spearman = float(np.corrcoef(average_ranks(first), average_ranks(second))[0, 1])
    if math.isnan(pearson) or math.isnan(spearman):
        return Correlation(over, count, None, None, "undefined for these values")
    return Correlation(over, count, spearman, pearson)


def distance_correlations(group: SeedGroup, phases: dict[str, Any]) -> list[Correlation]:
    """Learning distance against test accuracy over the group's mean curves: all rounds, then each phase."""
    distance, test = group_curve(group, "learning_distance"), group_curve(group, "test_acc")
    acc_of = dict(zip(test.rounds, test.mean))
    points = [(r, d, acc_of[r]) for r, d in zip(distance.rounds, distance.mean) if r in acc_of]
    found = [correlation("all rounds", [d for _, d, _ in points], [a for _, _, a in points])]
    for span in phases.get("phases", []):
        inside = [(d, a) for r, d, a in points if span["from_round"] <= r <= span["to_round"]]
        found.append(correlation(f"{span['name']} (rounds {span['from_round']}-{span['to_round']})",
                                 [d for d, _ in inside], [a for _, a in inside]))
    return found


# ---------------------------------------------------------------------------- tickets and reinits


@dataclass(frozen=True)
class TicketCurves:
    """Which stored curve is the ticket and which the reinit, for a group's retrain mode."""

    ticket: Curve
    reinit: Curve
    random_prune: Curve


def ticket_curves(group: SeedGroup) -> TicketCurves:
    """retrain.mode=reinit reports the reinit branch itself and keeps the ticket under "ticket"; every other
    mode reports the ticket (the rewound or retrained network) and keeps the reinit under "reinit"."""
    mode = group.records[0].config.get("retrain", {}).get("mode")
    main = group_curve(group, "test_acc")
    random_prune = group_curve(group, "test_acc", "random_prune")
    if mode == "reinit":
        return TicketCurves(group_curve(group, "test_acc", "ticket"), main, random_prune)
    return TicketCurves(main, group_curve(group, "test_acc", "reinit"), random_prune)


@dataclass(frozen=True)
class Duel:
    round: int
    sparsity: float
    ticket: float
    reinit: float

    @property
    def points(self) -> float:
        """How many accuracy points the reinit is above the ticket (negative: below)."""
        return 100 * (self.reinit - self.ticket)


def duels(curves: TicketCurves) -> list[Duel]:
    """Every round both the ticket and the reinit have (group means)."""
    reinit_of = dict(zip(curves.reinit.rounds, curves.reinit.mean))
    return [Duel(r, s, m, reinit_of[r]) for r, s, m in zip(curves.ticket.rounds, curves.ticket.sparsity,
                                                           curves.ticket.mean) if r in reinit_of]


# ---------------------------------------------------------------------------- the paper's numbers


def references() -> list[dict[str, Any]]:
    """The reference table shipped with the package (paper_reference.toml)."""
    with REFERENCE_FILE.open("rb") as handle:
        return tomllib.load(handle)["reference"]


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.isclose(value, wanted, rel_tol=1e-9, abs_tol=1e-12)
    return value == wanted


def reference_for(config: dict[str, Any]) -> dict[str, Any] | None:
    """The reference whose `match` fields all equal the config's, or None."""
    flat = flatten(config)
    return next((ref for ref in references()
                 if all(_same(flat.get(key), wanted) for key, wanted in ref["match"].items())), None)


def reference_rows(reference: dict[str, Any], test: Curve, phases: dict[str, Any]) -> list[tuple[str, ...]]:
    """(point, reference, this group's mean, difference in points) for dense, dip, peak and end."""
    mean_of = dict(zip(test.rounds, zip(test.mean, test.sparsity)))
    last = test.rounds[-1] if test.rounds else None
    yours = {"dense": (0 if 0 in mean_of else None), "dip": (phases.get("dip") or {}).get("round"),
             "peak": (phases.get("peak") or {}).get("round"), "end": last}
    rows = []
    for key, label in (("dense", "dense"), ("dip", "critical dip"), ("peak", "sweet peak"), ("end", "end")):
        ref = reference[key]
        ref_acc, ref_sparsity = (ref, 0.0) if key == "dense" else (ref["acc"], ref["sparsity"])
        ref_text = f"{ref_acc:.1f}%" + ("" if key == "dense" else f" at {ref_sparsity:g}%")
        round_index = yours[key]
        if round_index is None:
            rows.append((label, ref_text, "-", "-"))
            continue
        acc, sparsity = mean_of[round_index]
        mine = f"{100 * acc:.1f}%" + ("" if key == "dense" else f" at {100 * sparsity:.2f}%")
        rows.append((label, ref_text, mine, f"{100 * acc - ref_acc:+.1f}"))
    return rows
