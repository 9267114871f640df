"""plotext charts: the sparse double descent curve, per-epoch curves, learning distance, comparisons.

Each chart keeps its data and redraws the whole figure in `replot`, then refreshes itself; the
dashboard calls `replot` at most a few times a second. Series are downsampled to the width.
They read like the exported figure: every series has its own marker as well as its colour, the
dense accuracy is a labelled line, y ticks are round numbers, epochs whole, and the phases' names
sit above the plot area (as ticks of its upper edge), clear of the curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual_plotext import PlotextPlot

from core.grouping import runs_per_round
from sdd_tui.runview import EpochPoint
from sdd_tui.widgets.phases import phases_for_chart
from sdd_tui.widgets.series import (
    RunGroup,
    Series,
    accuracy_series,
    dense_accuracy,
    downsample,
    mean_curve,
    nice_ticks,
    round_series,
    sparsity_ticks,
    sparsity_x,
    tick_labels,
)  # fmt: skip

LINE_COLORS = ("cyan", "magenta", "green", "orange", "blue", "red", "yellow", "gray")
MARKERS = ("braille", "+", "dot", "x", "o", "*", "^", "#")  # a series is told apart by shape, not colour alone
DENSE_MARKER = "─"
PHASE_COLORS = {"light": "gray", "critical": "red", "sweet": "green", "collapsed": "orange"}


class Chart(PlotextPlot):
    """A plotext chart that draws from its own data; subclasses implement `draw`."""

    def on_resize(self) -> None:
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        self.draw(plt)
        self.refresh()

    def draw(self, plt) -> None:
        raise NotImplementedError

    @property
    def max_points(self) -> int:
        return max(8, 2 * self.size.width)

    @property
    def max_y_ticks(self) -> int:
        return max(3, min(11, self.size.height // 3))

    def _y_axis(self, plt, values: Sequence[float], yside: str = "left") -> list[float]:
        """Round-numbered y ticks covering `values`, and the limits to match."""
        ticks = nice_ticks(min(values), max(values), self.max_y_ticks)
        plt.yticks(ticks, tick_labels(ticks), yside=yside)
        plt.ylim(ticks[0], ticks[-1], yside=yside)
        return ticks

    def _waiting(self, plt, text: str, y_max: float = 100.0) -> None:
        """An empty chart saying what it waits for, with round ticks all the same."""
        plt.text(text, 0.5, y_max / 2, alignment="center")
        plt.xticks([0, 0.5, 1], ["", "", ""])
        plt.xlim(0, 1)
        ticks = nice_ticks(0, y_max, self.max_y_ticks)
        plt.yticks(ticks, tick_labels(ticks))
        plt.ylim(ticks[0], ticks[-1])

    def _epoch_axis(self, plt, epochs: Sequence[int]) -> None:
        ticks = nice_ticks(min(epochs), max(epochs), max(3, self.size.width // 10), integer=True)
        plt.xticks(ticks, tick_labels(ticks))
        plt.xlim(ticks[0], ticks[-1])

    def _sparsity_axis(self, plt, series: Sequence[Series]) -> tuple[float, float]:
        """Ticks labelled as sparsity %; returns the x limits."""
        x_max = max((max(s.xs) for s in series if s.xs), default=1.0)
        ticks, labels = sparsity_ticks(max(x_max, 0.3), max_ticks=max(2, self.size.width // 9))
        plt.xticks(ticks, labels)
        limits = (0.0, max(x_max, ticks[-1]) * 1.02)
        plt.xlim(*limits)
        plt.xlabel("sparsity")
        return limits

    def _lines(self, plt, series: Sequence[Series]) -> None:
        for index, line in enumerate(series):
            if not line.xs:
                continue
            xs, ys = downsample(line.xs, line.ys, self.max_points)
            plt.plot(xs, ys, label=line.label, color=LINE_COLORS[index % len(LINE_COLORS)],
                     marker=line.marker or MARKERS[index % len(MARKERS)])


class RoundsChart(Chart):
    """A chart of a run's rounds (one point per round)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rounds: list[dict[str, Any]] = []

    def set_rounds(self, rounds: list[dict[str, Any]]) -> None:
        self.rounds = list(rounds)
        self.replot()


class SddChart(RoundsChart):
    """Test (last and best epoch) and train accuracy against sparsity, dense test accuracy, phases."""

    def draw(self, plt) -> None:
        plt.title("accuracy % vs sparsity")
        series = accuracy_series(self.rounds)
        if not any(s.xs for s in series):
            self._waiting(plt, "waiting for the first round")
            return
        self._lines(plt, series)
        limits = self._sparsity_axis(plt, series)
        dense = dense_accuracy(self.rounds)
        if dense is not None:  # a labelled line across the plot, as in the exported figure
            plt.plot(list(limits), [dense, dense], label="dense", color="gray", marker=DENSE_MARKER)
        ticks = self._y_axis(plt, [y for s in series for y in s.ys] + ([dense] if dense is not None else []))
        self._phases(plt, limits, ticks[0])

    def _phases(self, plt, limits: tuple[float, float], y_low: float) -> None:
        """A line where each phase after the first begins; the names above the plot, at each phase's middle
        (ticks of the plot's upper edge, so they never cover a curve)."""
        spans = phases_for_chart(self.rounds)
        if not spans:
            return
        short = self.size.width < 100
        middles, names = [], []
        for index, span in enumerate(spans):
            start, end = sparsity_x(span.first), sparsity_x(span.last)
            if index:
                plt.vline(start, PHASE_COLORS[span.name])
            middles.append((start + end) / 2)
            names.append({"critical": "crit", "collapsed": "coll"}.get(span.name, span.name) if short else span.name)
        plt.scatter(list(limits), [y_low, y_low], xside="upper", marker=" ")  # the upper edge spans the same x
        plt.xlim(*limits, xside="upper")
        plt.xticks(middles, names, xside="upper")


class EpochChart(Chart):
    """The current round's train loss (right axis) and test accuracy per epoch."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.points: list[EpochPoint] = []
        self.round_index = 0

    def set_points(self, points: list[EpochPoint], round_index: int) -> None:
        self.points, self.round_index = list(points), round_index
        self.replot()

    def draw(self, plt) -> None:
        plt.title(f"round {self.round_index}: per epoch")
        if not self.points:
            self._waiting(plt, "waiting for an epoch")
            return
        epochs = [p.epoch for p in self.points]
        xs, test = downsample(epochs, [100 * p.test_acc for p in self.points], self.max_points)
        _, loss = downsample(epochs, [p.train_loss for p in self.points], self.max_points)
        plt.plot(xs, test, label="test acc %", color="cyan", marker=MARKERS[0])
        plt.plot(xs, loss, label="train loss", color="orange", marker=MARKERS[1], yside="right")
        self._y_axis(plt, test)
        self._y_axis(plt, loss, yside="right")
        self._epoch_axis(plt, epochs)
        plt.xlabel("epoch")


class DistanceChart(RoundsChart):
    """Learning distance ||w - w_init|| against sparsity."""

    def draw(self, plt) -> None:
        plt.title("learning distance vs sparsity")
        series = round_series(self.rounds, "learning_distance", "distance", scale=1.0)
        if not series.xs:
            self._waiting(plt, "no learning distance yet", 1.0)
            return
        self._lines(plt, [series])
        self._sparsity_axis(plt, [series])
        self._y_axis(plt, series.ys)


COMPARE_METRICS = {
    "test_acc": ("test accuracy % (last epoch)", 100.0),
    "best_test_acc": ("test accuracy % (best epoch)", 100.0),
    "train_acc": ("train accuracy %", 100.0),
    "learning_distance": ("learning distance", 1.0),
}


def group_number(index: int) -> str:
    return f"#{index + 1}"


class CompareChart(Chart):
    """One line per group of runs (mean over seeds) with dotted mean +- std lines, and a legend.

    A label too long for the legend (it would be cut at the plot's edge) shows as its group number;
    the table under the chart gives every group's number and whole label, wrapped."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.groups: list[RunGroup] = []
        self.metric = "test_acc"

    def set_groups(self, groups: list[RunGroup], metric: str) -> None:
        self.groups, self.metric = list(groups), metric
        self.replot()

    def legend_label(self, index: int, group: RunGroup) -> str:
        if len(group.label) <= max(16, self.size.width // 2 - 8):
            return group.label
        return f"{group_number(index)} (n={runs_per_round(group.records)})"

    def draw(self, plt) -> None:
        title, scale = COMPARE_METRICS[self.metric]
        plt.title(f"{title} vs sparsity")
        drawn: list[Series] = []
        y_values: list[float] = []
        for index, group in enumerate(self.groups):
            curve = mean_curve(group, self.metric, scale)
            if not curve.xs:
                continue
            color = LINE_COLORS[index % len(LINE_COLORS)]
            xs, mean = downsample(curve.xs, curve.mean, self.max_points)
            plt.plot(xs, mean, label=self.legend_label(index, group), color=color, marker=MARKERS[index % len(MARKERS)])
            bands = []
            if any(curve.std):
                for sign in (1, -1):
                    band = [m + sign * s for m, s in zip(curve.mean, curve.std)]
                    plt.plot(*downsample(curve.xs, band, self.max_points), color=color, marker=".")
                    bands += band
            drawn.append(Series(group.label, curve.xs, curve.mean))
            y_values += curve.mean + bands
        if not drawn:
            self._waiting(plt, "no rounds to compare")
            return
        self._sparsity_axis(plt, drawn)
        self._y_axis(plt, y_values)
