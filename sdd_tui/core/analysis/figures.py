"""Publication figures with matplotlib's object API: no pyplot, no global backend, safe in any thread.

- `group_by_seed(records)`: runs whose configs differ only by seed (and by how they were run:
  core.history.grouping's rule) form one group, drawn as mean +- std (sample std, n - 1).
- `figure_one(records, metric)`: the paper's Figure 1: test accuracy (top) and train accuracy
  (bottom) against sparsity, on core.analysis.sparsity_axis (the app's charts' axis: -log10 of the remaining-weight
  fraction, ticks labelled as sparsity %); phases of the first group shaded; a reinit (or ticket) branch
  overlaid dashed, a random-prune branch dotted.
  Another `metric` (learning_distance, best_test_acc, ...) draws one panel of that metric.
- `interpolation_figure(record)`: the re-dense interpolation and filter-normalised loss plots.
- `save_figure(figure, path)`: PNG, PDF or SVG by the file's suffix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..errors import SddError
from ..history.grouping import group_by_setting, mean_std, setting_key
from ..history.records import RunRecord, as_run_record
from .phases import detect_phases
from .results import BRANCH_LABELS, BRANCHES, ROUND_KEYS
from .sparsity_axis import AXIS_LABEL, sparsity_axis, sparsity_x

FORMATS = (".png", ".pdf", ".svg")
FIGURE_MAX_TICKS = 12  # sparsity ticks an 8-inch figure labels without overlap
PHASE_COLOURS = {"light": "#dddddd", "critical": "#f4b6b6", "sweet": "#b9e3b9", "collapsed": "#c9c9e8"}
BRANCH_STYLES = {"reinit": "--", "ticket": "--", "random_prune": ":"}  # a branch is dashed (random prune: dotted)
METRIC_LABELS = {"test_acc": "test accuracy (%)", "train_acc": "train accuracy (noisy labels, %)",
                 "best_test_acc": "best-epoch test accuracy (%)", "learning_distance": "learning distance ||w - w0||",
                 "noisy_memorized": "noisy labels memorised (%)", "noisy_true_acc": "noisy samples, true labels (%)",
                 "test_loss": "test loss", "train_loss": "train loss"}


@dataclass
class SeedGroup:
    """Runs that differ only by seed."""

    key: str
    records: list[RunRecord] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return [r.config.get("runtime", {}).get("seed", 0) for r in self.records]

    @property
    def label(self) -> str:
        name = self.records[0].name or self.records[0].id
        if len(self.records) == 1:
            return f"{name} ({self.records[0].id})"
        name = re.sub(r"\s*(seed|level)=\d+", "", name)  # sweep members are named after their seed and level
        seeds = sorted(set(self.seeds))  # the one-shot levels of one seed are several runs of one curve
        return f"{name} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}: {', '.join(map(str, seeds))})"


def group_by_seed(records: Sequence[RunRecord | dict[str, Any]]) -> list[SeedGroup]:
    """Seed groups in the order their first run appears in `records` (core.history.grouping's rule)."""
    typed = [as_run_record(record) for record in records]
    return [SeedGroup(setting_key(group[0].config), group)
            for group in group_by_setting(typed, config_of=lambda record: record.config)]


@dataclass
class Curve:
    rounds: list[int]
    sparsity: list[float]
    mean: list[float]
    std: list[float]
    count: list[int]


def _value(result: dict[str, Any], metric: str, branch: str | None) -> float | None:
    source = result.get(branch) if branch else result
    return source.get(metric) if isinstance(source, dict) else None


def group_curve(group: SeedGroup, metric: str, branch: str | None = None) -> Curve:
    """Mean and std of `metric` per round index over the group's runs (rounds any run has)."""
    by_round: dict[int, list[tuple[float, float]]] = {}
    for record in group.records:
        for result in record.rounds:
            value = _value(result, metric, branch)
            if value is not None and result.get("sparsity") is not None:
                by_round.setdefault(result["round"], []).append((result["sparsity"], float(value)))
    curve = Curve([], [], [], [], [])
    for round_index in sorted(by_round):
        pairs = by_round[round_index]
        values = [v for _, v in pairs]
        mean, spread = mean_std(values)
        curve.rounds.append(round_index)
        curve.sparsity.append(sum(s for s, _ in pairs) / len(pairs))
        curve.mean.append(mean)
        curve.std.append(spread)
        curve.count.append(len(values))
    return curve


def group_phases(group: SeedGroup) -> dict[str, Any]:
    """Phases of the group's mean test and train accuracy curves."""
    test, train = group_curve(group, "test_acc"), group_curve(group, "train_acc")
    train_of = dict(zip(train.rounds, train.mean))
    rounds = [{"round": r, "sparsity": s, "test_acc": m, "train_acc": train_of.get(r)}
              for r, s, m in zip(test.rounds, test.sparsity, test.mean)]
    return detect_phases(rounds)


# ---------------------------------------------------------------------------- axes helpers


def _sparsity_axis(ax, sparsities: list[float]) -> None:
    """core.analysis.sparsity_axis: sparser to the right, ticks labelled as sparsity %; a margin left of the dense round."""
    axis = sparsity_axis(max(map(sparsity_x, sparsities), default=1.0), FIGURE_MAX_TICKS)
    ax.set_xlim(axis.limits[0] - 0.02 * axis.limits[1], axis.limits[1])
    ax.set_xticks(axis.ticks, axis.labels)
    ax.minorticks_off()
    ax.grid(True, which="major", alpha=0.3)


def _scale(metric: str) -> float:
    return 100.0 if metric.endswith("_acc") or metric in ("noisy_memorized",) else 1.0


def _shade_phases(ax, phases: dict[str, Any], label: bool) -> None:
    for span in phases.get("phases", []):
        left, right = sparsity_x(span["from_sparsity"]), sparsity_x(span["to_sparsity"])
        ax.axvspan(left, right, color=PHASE_COLOURS[span["name"]], alpha=0.45, lw=0, zorder=0)
        if label:
            ax.text((left + right) / 2, 0.98, span["name"], transform=ax.get_xaxis_transform(), ha="center", va="top",
                    fontsize=8, color="#444444")


def _draw_group(ax, group: SeedGroup, metric: str, colour, branch: str | None, label: str) -> None:
    curve = group_curve(group, metric, branch)
    if not curve.rounds:
        return
    scale = _scale(metric)
    x = [sparsity_x(s) for s in curve.sparsity]
    mean = [m * scale for m in curve.mean]
    style = {"linestyle": "-", "marker": "o"} if branch is None else {"linestyle": BRANCH_STYLES[branch],
                                                                        "marker": None}
    ax.plot(x, mean, color=colour, markersize=3, lw=1.4, label=label, **style)
    if max(curve.count) > 1:
        ax.fill_between(x, [m - s * scale for m, s in zip(mean, curve.std)],
                        [m + s * scale for m, s in zip(mean, curve.std)], color=colour, alpha=0.2, lw=0)


def _branches(group: SeedGroup) -> list[str]:
    rounds = [r for record in group.records for r in record.rounds]
    return [b for b in BRANCHES if any(isinstance(r.get(b), dict) for r in rounds)]


# ---------------------------------------------------------------------------- figures


def check_metric(metric: str) -> str:
    """`metric` if a figure can draw it (a round's stored number), else a user error naming the choices."""
    allowed = [k for k in ROUND_KEYS if k not in ("round", "sparsity", "remaining")] + ["test_loss", "train_loss"]
    if metric not in allowed:
        raise SddError(f"--metric {metric!r}: choose one of {', '.join(allowed)}")
    return metric


def figure_one(records: Sequence[RunRecord | dict[str, Any]], metric: str = "test_acc", title: str | None = None,
               size: tuple[float, float] = (8.0, 7.0), dpi: int = 100, panels: Sequence[str] = ()) -> Figure:
    """Figure 1 of the paper for one or more runs (grouped by seed); see the module docstring.
    `panels`: these metrics stacked instead (the report's figures), phases shaded on each."""
    if not records:
        raise SddError("no runs to plot; give run ids (`sdd-tui runs` lists them)")
    records = [as_run_record(record) for record in records]
    groups = group_by_seed(records)
    metrics = list(panels) or ([metric, "train_acc"] if metric == "test_acc" else [metric])
    metric = metrics[0]
    height = size[1] * (0.6 if len(metrics) == 1 else max(1.0, len(metrics) / 2))
    figure = Figure(figsize=(size[0], height), dpi=dpi, layout="constrained")
    axes = figure.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    colours = [f"C{i % 10}" for i in range(len(groups))]
    phases = group_phases(groups[0])
    sparsities = [r["sparsity"] for rec in records for r in rec.rounds if r.get("sparsity") is not None]
    for panel, (ax, shown) in enumerate(zip(axes, metrics)):
        _shade_phases(ax, phases, label=panel == 0)
        for group, colour in zip(groups, colours):
            _draw_group(ax, group, shown, colour, None, group.label)
            for branch in _branches(group):
                _draw_group(ax, group, shown, colour, branch, f"{group.label}, {BRANCH_LABELS[branch]}")
        ax.set_ylabel(METRIC_LABELS.get(shown, shown))
        _sparsity_axis(ax, sparsities)
    if metric == "test_acc" and phases.get("double_descent"):
        _mark_events(axes[0], phases)
    axes[0].legend(fontsize=8, loc="best")
    axes[-1].set_xlabel(AXIS_LABEL)
    if len(groups) == 1 and not phases.get("double_descent"):
        axes[0].set_title(f"no double descent: {phases.get('reason')}", fontsize=8)
    figure.suptitle(title or _title(records))
    return figure


def _mark_events(ax, phases: dict[str, Any]) -> None:
    for key, marker in (("dip", "v"), ("peak", "^")):
        point = phases[key]
        x, y = sparsity_x(point["sparsity"]), 100 * point["test_acc"]
        ax.plot([x], [y], marker=marker, color="black", markersize=7, linestyle="none", zorder=5)
        ax.annotate(f"{key}: {100 * point['test_acc']:.1f}% at {100 * point['sparsity']:.2f}%", (x, y),
                    textcoords="offset points", xytext=(9, -3) if key == "dip" else (0, -16),
                    ha="left" if key == "dip" else "center", fontsize=8)


def _title(records: list[RunRecord]) -> str:
    config = records[0].config
    noise = config.get("noise", {})
    return (f"{config.get('model', {}).get('name', '?')} on {config.get('data', {}).get('name', '?')}, "
            f"{noise.get('kind', '?')} noise {100 * noise.get('rate', 0):.0f}%, "
            f"{config.get('retrain', {}).get('mode', '?')}")


def interpolation_figure(record: RunRecord | dict[str, Any], branch: str = "main", size=(11.0, 4.0),
                         dpi: int = 100) -> Figure:
    """Loss and accuracy along w(a) = (1 - a) w_sparse + a w_redense, and the 1-D loss plots if stored."""
    record = as_run_record(record)
    key = "redense" if branch == "main" else f"redense_{branch}"
    results = (record.analyses or {}).get(key) or {}
    if not results:
        raise SddError(f"run {record.id} has no re-dense analysis; run "
                       f"`sdd-tui analyze {record.id} --redense --rounds 5,10,20` first")
    filtered = any("filter_normalized" in r for r in results.values())
    figure = Figure(figsize=(size[0] * (1.4 if filtered else 1), size[1]), dpi=dpi, layout="constrained")
    axes = figure.subplots(1, 3 if filtered else 2, squeeze=False)[0]
    for index, (round_key, result) in enumerate(sorted(results.items(), key=lambda kv: int(kv[0]))):
        colour = f"C{index % 10}"
        label = f"round {round_key} ({100 * (result.get('sparsity') or 0):.1f}% sparse)"
        alphas = [p["alpha"] for p in result["interpolation"]]
        for ax, metric, scale in ((axes[0], "loss", 1), (axes[1], "acc", 100)):
            ax.plot(alphas, [scale * p[f"train_{metric}"] for p in result["interpolation"]], color=colour,
                    label=f"{label}, train")
            ax.plot(alphas, [scale * p[f"test_{metric}"] for p in result["interpolation"]], color=colour,
                    linestyle="--", label=f"{label}, test")
        for name, style in (("sparse", "-"), ("redense", ":")):
            rows = result.get("filter_normalized", {}).get(name)
            if rows:
                axes[2].plot([r["beta"] for r in rows], [r["train_loss"] for r in rows], color=colour,
                             linestyle=style, label=f"round {round_key}, {name}")
    for ax, ylabel in zip(axes, ("loss", "accuracy (%)", "train loss")):
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_xlabel("a  (0 = sparse solution, 1 = re-dense solution)")
    axes[1].set_xlabel("a  (0 = sparse solution, 1 = re-dense solution)")
    if filtered:
        axes[2].set_xlabel("b  (w + b d, filter-normalised direction d)")
    figure.suptitle(f"re-dense interpolation: {record.name} ({record.id})")
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Write the figure; the format comes from the suffix (.png, .pdf, .svg)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise SddError(f"cannot write {path.name}: the file name must end in {', '.join(FORMATS)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=figure.dpi)
    except OSError as error:
        raise SddError(f"cannot write {path} ({error.strerror}); choose another -o path") from None
    return path
