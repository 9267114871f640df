"""A sweep's curves as a figure: mean +- std bands of one metric against sparsity (matplotlib, Agg).

x is log10 of the remaining-weight fraction, drawn so that sparsity grows to the right, with ticks
labelled as sparsity percentages; one line and band per grid point. `draw_sweep_curves` takes the
output of `core.sweep.sweep_curves`, so `sdd-tui plot --sweep ID` can reuse it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sdd_tui.core.errors import SddError

SPARSITY_TICKS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)
FRACTION_METRICS = ("test_acc", "best_test_acc", "train_acc", "noisy_memorized", "noisy_true_acc")
METRIC_LABELS = {
    "test_acc": "test accuracy", "best_test_acc": "best test accuracy", "train_acc": "train accuracy (noisy labels)",
    "noisy_memorized": "noisy samples memorised", "noisy_true_acc": "noisy samples: true label",
    "learning_distance": "learning distance", "test_loss": "test loss", "train_loss": "train loss",
}  # fmt: skip


def log_remaining(sparsity: float) -> float:
    """log10 of the remaining fraction (0 when dense), clipped so a fully pruned net stays finite."""
    return math.log10(max(1.0 - sparsity, 1e-12))


def sparsity_ticks(sparsities: list[float]) -> tuple[list[float], list[str]]:
    """Tick positions (log10 remaining) and sparsity labels: round numbers inside the data's range,
    or the data's own sparsities when fewer than four round numbers fit (a short sweep)."""
    lowest = min(log_remaining(s) for s in sparsities)
    chosen = [s for s in SPARSITY_TICKS if log_remaining(s) >= lowest - 0.05]
    if len(chosen) < 4:
        chosen = sorted({round(s, 4) for s in sparsities})
    return [log_remaining(s) for s in chosen], [f"{100 * s:.3g}%" for s in chosen]


def draw_sweep_curves(curves: list[dict[str, Any]], path: Path, metric: str = "test_acc", title: str = "") -> None:
    """Write the figure to `path` (format from its suffix)."""
    if metric not in METRIC_LABELS:
        raise SddError(f"--metric {metric!r}: use one of {', '.join(METRIC_LABELS)}")
    drawn = [c for c in curves if any(r.get(f"{metric}_mean") is not None for r in c["rounds"])]
    if not drawn:
        raise SddError("the sweep has no finished rounds yet; plot it once its members have run")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 100.0 if metric in FRACTION_METRICS else 1.0
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    sparsities = []
    for curve in drawn:
        rows = [r for r in curve["rounds"] if r.get(f"{metric}_mean") is not None]
        x = [log_remaining(r["sparsity"]) for r in rows]
        mean = [scale * r[f"{metric}_mean"] for r in rows]
        std = [scale * r[f"{metric}_std"] for r in rows]
        label = f"{curve['label']} (n={max(r['seeds'] for r in rows)})"
        line, = axes.plot(x, mean, marker="o", markersize=3, label=label)
        axes.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                          color=line.get_color(), alpha=0.2, linewidth=0)
        sparsities += [r["sparsity"] for r in rows]
    positions, labels = sparsity_ticks(sparsities)
    axes.set_xticks(positions, labels)
    axes.invert_xaxis()  # log10(remaining) falls as sparsity rises: sparser to the right
    axes.set_xlabel("sparsity (log scale of remaining weights)")
    axes.set_ylabel(METRIC_LABELS[metric] + (" (%)" if scale == 100.0 else "") + ", mean ± std")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    if title:
        axes.set_title(title, fontsize="medium")
    figure.tight_layout()
    try:
        figure.savefig(path)
    except (OSError, ValueError) as error:
        raise SddError(f"cannot write {path} ({error}); choose another -o path (.png, .pdf, .svg)") from None
    finally:
        plt.close(figure)
