"""Phase detection: dense accuracy, critical dip, sweet peak and collapse of a sparse double descent curve.

Pure functions of a run's round dicts (no torch), so the CLI, the TUI, exports and figures share them
and tests need no training. Re-dense training and interpolation live in core/analysis/flatness.py.

The rule (all accuracies are fractions in [0, 1], thresholds are in accuracy points, 0.02 = 2 points):

1. Rounds without a test accuracy are dropped; the rest are sorted by round. Fewer than
   MIN_ROUNDS (the dense round and three pruned ones) is "too few rounds".
2. The test curve is smoothed by a centred moving average over `window` rounds (3; the window
   shrinks at both ends). Events are located on the smoothed curve, so one lucky or unlucky round
   neither makes nor hides a phase; the dip and the peak are then moved to the raw lowest / highest
   round within half a window of where the smoothed curve put them, and reported with their raw
   accuracy (plus the smoothed value).
3. Sweet peak and critical dip: for each pruned round d, drop(d) = highest smoothed accuracy at or
   before d minus the accuracy at d, and rise(d) = highest smoothed accuracy after d minus the
   accuracy at d. The dip candidate maximises min(drop, rise); the sweet peak is the highest
   smoothed accuracy after it; the critical dip is then the lowest smoothed accuracy among the
   pruned rounds before the peak (the paper's "lowest test accuracy before the sweet peak").
4. There is double descent when both the dip's drop and the peak's rise are at least `min_points`.
   Otherwise `double_descent` is false and `reason` says which part is missing (flat: the smoothed
   curve spans less than `min_points`; no critical dip: it never falls that much; no sweet peak: it
   falls and never recovers that much).
5. Collapse, where both accuracies fall because the network can no longer fit even the clean
   labels: the first round after the peak whose smoothed test accuracy is `collapse_points` or more
   below the peak's AND below the dense network's level (the smoothed accuracy of the first round:
   a pruned network still better than the dense one is not collapsed, however far it fell from the
   peak) AND whose train accuracy is not above the peak round's (when both have one: train and test
   fall together). None if the run never got there.
6. Train accuracy leaving ~100% (the interpolation threshold): the first pruned round whose train
   accuracy is more than `train_points` below the highest train accuracy of the rounds before it.
   It is reported next to the dip, not used to find it (the paper finds them close together).
7. Phases for shading, contiguous in rounds: light from the dense round to the last round before
   the dip still at least half the drop above the dip; critical from there to the first round after
   the dip that has recovered half the rise; sweet from there to the collapse (or the last round);
   collapsed from the collapse to the last round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..format import pct

MIN_ROUNDS = 4
DEFAULT_WINDOW = 3
DEFAULT_MIN_POINTS = 0.02
DEFAULT_COLLAPSE_POINTS = 0.05
DEFAULT_TRAIN_POINTS = 0.02
PHASE_NAMES = ("light", "critical", "sweet", "collapsed")


def smooth(values: Sequence[float], window: int = DEFAULT_WINDOW) -> list[float]:
    """Centred moving average; the window shrinks at the ends so the length is kept."""
    half = max(0, window // 2)
    out = []
    for i in range(len(values)):
        part = values[max(0, i - half) : i + half + 1]
        out.append(sum(part) / len(part))
    return out


def _point(result: dict[str, Any], smoothed: float | None = None) -> dict[str, Any]:
    point = {key: result.get(key) for key in ("round", "sparsity", "test_acc", "train_acc")}
    if smoothed is not None:
        point["smoothed_test_acc"] = smoothed
    return point


def _pick_dip_and_peak(acc: list[float]) -> tuple[int, int, float, float]:
    """(dip index, peak index, drop, rise) on the smoothed curve, by the docstring's rule 3."""
    best_d, best_score = 1, float("-inf")
    for d in range(1, len(acc) - 1):
        drop = max(acc[: d + 1]) - acc[d]
        rise = max(acc[d + 1 :]) - acc[d]
        if min(drop, rise) > best_score:
            best_d, best_score = d, min(drop, rise)
    peak = max(range(best_d + 1, len(acc)), key=lambda i: (acc[i], -i))
    dip = min(range(1, peak), key=lambda i: (acc[i], i))
    return dip, peak, max(acc[: dip + 1]) - acc[dip], acc[peak] - acc[dip]


def _train_leaves(rounds: list[dict[str, Any]], train_points: float) -> dict[str, Any] | None:
    best = None
    for result in rounds:
        train = result.get("train_acc")
        if train is None:
            continue
        if best is not None and result["round"] > 0 and train < best - train_points:
            return _point(result)
        best = train if best is None else max(best, train)
    return None


def _phase(name: str, rounds: list[dict[str, Any]], first: int, last: int) -> dict[str, Any]:
    return {"name": name, "from_round": rounds[first]["round"], "to_round": rounds[last]["round"],
            "from_sparsity": rounds[first]["sparsity"], "to_sparsity": rounds[last]["sparsity"]}


def _phase_spans(rounds, acc, dip: int, peak: int, collapse: int | None) -> list[dict[str, Any]]:
    drop, rise = max(acc[: dip + 1]) - acc[dip], acc[peak] - acc[dip]
    light_end = max(i for i in range(dip) if acc[i] >= acc[dip] + drop / 2)
    sweet_start = min(i for i in range(dip + 1, peak + 1) if acc[i] >= acc[dip] + rise / 2)
    end = len(rounds) - 1
    spans = [_phase("light", rounds, 0, light_end), _phase("critical", rounds, light_end, sweet_start),
             _phase("sweet", rounds, sweet_start, collapse if collapse is not None else end)]
    if collapse is not None:
        spans.append(_phase("collapsed", rounds, collapse, end))
    return spans


def detect_phases(
    rounds: Sequence[dict[str, Any]],
    window: int = DEFAULT_WINDOW,
    min_points: float = DEFAULT_MIN_POINTS,
    collapse_points: float = DEFAULT_COLLAPSE_POINTS,
    train_points: float = DEFAULT_TRAIN_POINTS,
) -> dict[str, Any]:
    """Dense, dip, peak, collapse and phase spans of one curve; see the module docstring for the rule."""
    usable = sorted((r for r in rounds if r.get("test_acc") is not None and r.get("sparsity") is not None),
                    key=lambda r: r["round"])
    result: dict[str, Any] = {
        "double_descent": False, "reason": "", "dense": None, "dip": None, "peak": None, "collapse": None,
        "train_leaves": _train_leaves(usable, train_points), "phases": [],
        "rule": {"window": window, "min_points": min_points, "collapse_points": collapse_points,
                 "train_points": train_points},
    }
    if usable and usable[0]["round"] == 0:
        result["dense"] = _point(usable[0])
    if len(usable) < MIN_ROUNDS:
        result["reason"] = f"too few rounds ({len(usable)} with a test accuracy; need at least {MIN_ROUNDS})"
        return result
    acc = smooth([r["test_acc"] for r in usable], window)
    dip, peak, drop, rise = _pick_dip_and_peak(acc)
    if drop < min_points or rise < min_points:
        result["reason"] = _no_double_descent_reason(acc, min_points)
        return result
    raw = [r["test_acc"] for r in usable]
    half = window // 2
    raw_dip = min(range(max(1, dip - half), min(peak, dip + half + 1)), key=lambda i: (raw[i], i))
    raw_peak = max(range(max(raw_dip + 1, peak - half), min(len(raw), peak + half + 1)), key=lambda i: (raw[i], -i))
    collapse = _collapse(usable, acc, peak, max(peak, raw_peak), collapse_points)
    result.update(
        double_descent=True,
        reason=f"test accuracy falls {100 * drop:.1f} points to the dip, then rises {100 * rise:.1f} points "
               f"to the peak (smoothed over {window} rounds; threshold {100 * min_points:.1f} points)",
        dip=_point(usable[raw_dip], acc[raw_dip]), peak=_point(usable[raw_peak], acc[raw_peak]),
        collapse=_point(usable[collapse], acc[collapse]) if collapse is not None else None,
        phases=_phase_spans(usable, acc, dip, peak, collapse),
    )
    return result


def _collapse(rounds: list[dict[str, Any]], acc: list[float], peak: int, last_peak: int,
              collapse_points: float) -> int | None:
    """The collapse's index by the docstring's rule 5, or None."""
    peak_train = rounds[last_peak].get("train_acc")

    def train_falls(i: int) -> bool:
        train = rounds[i].get("train_acc")
        return train is None or peak_train is None or train <= peak_train

    return next((i for i in range(last_peak + 1, len(acc))
                 if acc[i] <= acc[peak] - collapse_points and acc[i] < acc[0] and train_falls(i)), None)


def _no_double_descent_reason(acc: list[float], min_points: float) -> str:
    """Which part is missing, judged on the smoothed curve."""
    limit = f"{100 * min_points:.1f} points"
    if max(acc) - min(acc) < min_points:
        return f"flat: test accuracy stays within {limit} (smoothed)"
    if not any(max(acc[: d + 1]) - acc[d] >= min_points for d in range(1, len(acc))):
        return f"no critical dip: test accuracy never falls {limit} below an earlier round"
    return f"no sweet peak: after falling, test accuracy never recovers {limit}"


def phase_of_round(phases: dict[str, Any], round_index: int) -> str | None:
    """The phase a round falls in (a boundary round belongs to the later phase), or None."""
    name = None
    for span in phases.get("phases", []):
        if span["from_round"] <= round_index <= span["to_round"]:
            name = span["name"]
    return name


def event_of_round(phases: dict[str, Any], round_index: int) -> str:
    """`dense`, `dip`, `peak` or `collapse` when the round is that event, else ''."""
    for key in ("dip", "peak", "collapse", "dense"):
        point = phases.get(key)
        if point and point.get("round") == round_index:
            return key
    return ""


def phases_lines(phases: dict[str, Any]) -> list[str]:
    """Human-readable lines for `runs show`."""

    def at(point: dict[str, Any]) -> str:
        return f"{pct(point['test_acc'])} at sparsity {100 * point['sparsity']:.2f}% (round {point['round']})"

    lines = []
    if phases.get("dense"):
        lines.append(f"dense: {pct(phases['dense']['test_acc'])} test, {pct(phases['dense']['train_acc'])} train")
    if not phases.get("double_descent"):
        lines.append(f"no double descent: {phases.get('reason')}")
    else:
        lines.append(f"critical dip: {at(phases['dip'])}")
        lines.append(f"sweet peak: {at(phases['peak'])}")
        lines.append(f"collapse: {at(phases['collapse'])}" if phases.get("collapse") else "collapse: not reached")
    leaves = phases.get("train_leaves")
    if leaves:
        lines.append(f"train accuracy leaves ~100%: {pct(leaves['train_acc'])} at sparsity "
                     f"{100 * leaves['sparsity']:.2f}% (round {leaves['round']})")
    return lines
