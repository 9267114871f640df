"""The one sparsity axis (core.analysis.sparsity_axis): the exported figures and the app's charts place rounds and
ticks alike."""

from __future__ import annotations

import math

import pytest

from sdd_tui.core.analysis.figures import FIGURE_MAX_TICKS, figure_one
from sdd_tui.core.analysis.sparsity_axis import sparsity_axis, sparsity_ticks, sparsity_x
from sdd_tui.widgets.series import accuracy_series
from tests.test_figures import record


def test_sparsity_axis_is_minus_log10_of_remaining_weights():
    assert sparsity_x(0.0) == 0.0
    assert sparsity_x(0.9) == pytest.approx(1.0)
    assert sparsity_x(0.99) == pytest.approx(2.0)
    assert math.isfinite(sparsity_x(1.0))


def test_ticks_are_labelled_as_sparsity_percent_and_cover_the_data():
    positions, labels = sparsity_ticks(sparsity_x(0.995), max_ticks=20)
    assert labels[0] == "0%" and "90%" in labels and "99%" in labels and "99.5%" in labels
    assert positions[-1] >= sparsity_x(0.995)
    assert positions == sorted(positions)
    few_positions, few_labels = sparsity_ticks(sparsity_x(0.9999), max_ticks=4)
    assert len(few_labels) == 4 and few_labels[0] == "0%" and few_positions[-1] >= sparsity_x(0.9999) - 1e-9


def test_an_axis_ends_past_its_data_and_a_short_one_still_reaches_half_sparse():
    axis = sparsity_axis(sparsity_x(0.9885))
    assert axis.labels[-1] == "99%" and axis.limits[0] == 0.0 and axis.limits[1] > axis.ticks[-1]
    short = sparsity_axis(sparsity_x(0.2))
    assert short.labels == ["0%", "20%", "50%"] and short.limits[1] > sparsity_x(0.5)


def test_the_figure_and_the_terminal_chart_share_positions_and_ticks():
    run = record("a", reinit=True)
    figure = figure_one([run])
    top = figure.axes[0]
    chart_xs = accuracy_series(run["rounds"])[0].xs  # the app's test-accuracy series
    assert list(top.get_lines()[0].get_xdata()) == pytest.approx(chart_xs)
    x_max = max(chart_xs)
    wide_chart = sparsity_axis(x_max, max_ticks=200 // 9)  # as widgets.charts asks at 200 columns
    assert [t.get_text() for t in figure.axes[-1].get_xticklabels()] == wide_chart.labels
    assert list(top.get_xticks()) == pytest.approx(wide_chart.ticks)
    assert len(wide_chart.labels) <= FIGURE_MAX_TICKS
    spans = [patch.get_x() for patch in top.patches]  # the shaded phases start where the chart's do
    assert spans and all(0 <= x <= x_max for x in spans)
