"""plotext charts: the sparse double descent curve, per-epoch curves, learning distance, comparisons.

Each chart keeps its data and redraws the whole figure in `replot`, then refreshes itself; the
dashboard calls `replot` at most a few times a second. Series are downsampled to the width.
They read like the exported figure: every series has its own marker as well as its colour, the
dense accuracy is a labelled line, y ticks are round numbers, epochs whole, and the phases' names
sit above the plot area (as ticks of its upper edge), clear of the curves. Reference lines (dense,
std bands, phase starts) are drawn first so that the data series are drawn over them; the title and
the legend are a line of text above the plot area, never over a curve. A chart with less room than
MIN_PLOT_ROWS rows of plot says so ("too small: WxH, needs ...") instead of overprinting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual_plotext import PlotextPlot

from sdd_tui.core.analysis.sparsity_axis import sparsity_axis, sparsity_x
from sdd_tui.runview import EpochPoint
from sdd_tui.widgets.phases import phases_for_chart
from sdd_tui.widgets.series import (
    RunGroup,
    Series,
    accuracy_series,
    dense_accuracy,
    downsample,
    group_counts,
    mean_curve,
    nice_ticks,
    round_series,
    tick_labels,
)  # fmt: skip

LINE_COLORS = ("cyan", "magenta", "green", "orange", "blue", "red", "yellow", "gray")
MARKERS = ("braille", "+", "dot", "x", "o", "*", "^", "#")  # a series is told apart by shape, not colour alone
DENSE_MARKER = "─"
BAND_MARKERS = ("·", ":", "'", "˙", "¨", "°", "∙", "-")  # std bands told apart by pattern (NO_COLOR), per group
LEGEND_MARKS = {"braille": "⢕", "dot": "•"}  # how plotext draws these markers, for the legend line
RICH_COLORS = {"orange": "dark_orange", "gray": "grey50"}  # plotext colour names rich spells otherwise
MIN_PLOT_ROWS = 6  # fewer rows of plot area cannot show a curve between round ticks: the chart says so
MIN_WIDTH = 30  # columns: the y ticks (5), both borders and a few sparsity ticks
FRAME_ROWS = 4  # plotext's rows around the plot area: both borders, the x ticks, the upper (phase) ticks
PHASE_COLORS = {"light": "gray", "critical": "red", "sweet": "green", "collapsed": "orange"}


LegendEntry = tuple[str, str, str]  # (marker as drawn, label, plotext colour)


def legend_lines(title: str, entries: list[LegendEntry], width: int) -> list[Text]:
    """The title, then `mark mark label` per entry, two spaces apart, wrapped to `width` columns."""
    lines = [Text(title, style="bold")]
    for mark, label, color in entries:
        item = Text(LEGEND_MARKS.get(mark, mark) * 2, style=RICH_COLORS.get(color, color)) + Text(f" {label}")
        if lines[-1].cell_len + 2 + item.cell_len > width and lines[-1].plain:
            lines.append(Text())
        lines[-1].append_text(Text("  ") + item if lines[-1].plain else item)
    return lines


class Chart(PlotextPlot):
    """A plotext chart that draws from its own data; subclasses implement `draw` (and call `legend` for
    each series worth a legend entry, `self.title` for the title)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = ""
        self.entries: list[LegendEntry] = []

    def on_resize(self) -> None:
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        self.entries = []
        self.draw(plt)
        self.refresh()

    def legend(self, mark: str, label: str, color: str) -> None:
        self.entries.append((mark, label, color))

    def render(self):
        """The legend lines above plotext's figure, sized to what they leave; or why it cannot be drawn."""
        width, height = self.size.width, self.size.height
        legend = legend_lines(self.title, self.entries, max(width, 1))
        needs = len(legend) + FRAME_ROWS + MIN_PLOT_ROWS
        if width < MIN_WIDTH or height < needs:
            return Text(f"{self.title}: too small: {width}x{height}, needs {MIN_WIDTH}x{needs}", style="dim")
        plt = self._plot
        plot_height = height - len(legend)
        plt.plotsize(width, plot_height)
        plt._set_size(width, plot_height)  # as PlotextPlot.render does (textual-plotext issue 5)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        return Text("\n").join([*legend, Text.from_ansi(plt.build())])

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
        axis = sparsity_axis(x_max, max_ticks=max(2, self.size.width // 9))
        plt.xticks(axis.ticks, axis.labels)
        plt.xlim(*axis.limits)  # no x label: the ticks are sparsity percentages and the title says "vs sparsity"
        return axis.limits

    def _lines(self, plt, series: Sequence[Series], order: Sequence[int] | None = None) -> None:
        """Each series in its colour and marker (by its index), drawn in `order` (the last on top); a series
        marked `points` is drawn as its points only, so that a line it nearly follows shows between them."""
        for index in order if order is not None else range(len(series)):
            line = series[index]
            if not line.xs:
                continue
            xs, ys = downsample(line.xs, line.ys, self.max_points)
            color, marker = LINE_COLORS[index % len(LINE_COLORS)], line.marker or MARKERS[index % len(MARKERS)]
            draw = plt.scatter if line.points else plt.plot
            draw(xs, ys, color=color, marker=marker)
        for index, line in enumerate(series):
            if line.xs:
                self.legend(line.marker or MARKERS[index % len(MARKERS)], line.label,
                            LINE_COLORS[index % len(LINE_COLORS)])


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
        self.title = "accuracy % vs sparsity"
        series = accuracy_series(self.rounds)
        if not any(s.xs for s in series):
            self._waiting(plt, "waiting for the first round")
            return
        limits = self._sparsity_axis(plt, series)
        dense = dense_accuracy(self.rounds)
        ticks = self._y_axis(plt, [y for s in series for y in s.ys] + ([dense] if dense is not None else []))
        self._phases(plt, limits, ticks[0])  # reference lines first: the series are drawn over them
        if dense is not None:  # a labelled line across the plot, as in the exported figure
            plt.plot(list(limits), [dense, dense], color="gray", marker=DENSE_MARKER)
        # train, the branches, then test (last epoch) on top, and the best epoch's points over its line
        order = [2, *range(3, len(series)), 0, 1]
        self._lines(plt, series, order)
        if dense is not None:
            self.legend(DENSE_MARKER, "dense", "gray")

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
        self.title = f"round {self.round_index}: per epoch"
        if not self.points:
            self._waiting(plt, "waiting for an epoch")
            return
        epochs = [p.epoch for p in self.points]
        xs, test = downsample(epochs, [100 * p.test_acc for p in self.points], self.max_points)
        _, loss = downsample(epochs, [p.train_loss for p in self.points], self.max_points)
        plt.plot(xs, loss, color="orange", marker=MARKERS[1], yside="right")
        plt.plot(xs, test, color="cyan", marker=MARKERS[0])
        self.legend(MARKERS[0], "test acc % (left)", "cyan")
        self.legend(MARKERS[1], "train loss (right)", "orange")
        self._y_axis(plt, test)
        self._y_axis(plt, loss, yside="right")
        self._epoch_axis(plt, epochs)


class DistanceChart(RoundsChart):
    """Learning distance ||w - w_init|| against sparsity."""

    def draw(self, plt) -> None:
        self.title = "learning distance vs sparsity"
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
        return f"{group_number(index)} ({group_counts(group)})"

    def draw(self, plt) -> None:
        title, scale = COMPARE_METRICS[self.metric]
        self.title = f"{title} vs sparsity"
        drawn: list[Series] = []
        y_values: list[float] = []
        curves = [(index, group, mean_curve(group, self.metric, scale)) for index, group in enumerate(self.groups)]
        curves = [(index, group, curve) for index, group, curve in curves if curve.xs]
        for index, _, curve in curves:  # the std bands first: every mean line is drawn over them
            if any(curve.std):
                for sign in (1, -1):
                    band = [m + sign * s for m, s in zip(curve.mean, curve.std)]
                    plt.plot(*downsample(curve.xs, band, self.max_points), color=LINE_COLORS[index % len(LINE_COLORS)],
                             marker=BAND_MARKERS[index % len(BAND_MARKERS)])
                    y_values += band
        for index, group, curve in curves:
            color, marker = LINE_COLORS[index % len(LINE_COLORS)], MARKERS[index % len(MARKERS)]
            plt.plot(*downsample(curve.xs, curve.mean, self.max_points), color=color, marker=marker)
            self.legend(marker, self.legend_label(index, group), color)
            if any(curve.std):
                self.legend(BAND_MARKERS[index % len(BAND_MARKERS)], "±std", color)
            drawn.append(Series(group.label, curve.xs, curve.mean))
            y_values += curve.mean
        if not drawn:
            self._waiting(plt, "no rounds to compare")
            return
        self._sparsity_axis(plt, drawn)
        self._y_axis(plt, y_values)
