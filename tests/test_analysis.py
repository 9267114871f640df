"""Phase detection on hand-made curves (no training)."""

from __future__ import annotations

import pytest

from sdd_tui.core.analysis.phases import detect_phases, event_of_round, phase_of_round, phases_lines, smooth

DD_TEST = [0.68, 0.69, 0.68, 0.67, 0.66, 0.64, 0.62, 0.60, 0.58, 0.57, 0.60, 0.65, 0.70, 0.75, 0.79, 0.82, 0.83,
           0.82, 0.74, 0.60, 0.45]
DD_TRAIN = [1.0] * 8 + [0.99, 0.92, 0.85, 0.78, 0.72, 0.68, 0.65, 0.62, 0.60, 0.58, 0.50, 0.40, 0.30]
# deterministic "noise" of about +-1 point, different at every round
WIGGLE = [0.01 * ((i * 7) % 5 - 2) / 2 for i in range(len(DD_TEST))]


def rounds_of(test, train=None):
    train = train or [1.0] * len(test)
    return [{"round": i, "sparsity": 1 - 0.8**i, "test_acc": t, "train_acc": tr}
            for i, (t, tr) in enumerate(zip(test, train))]


def test_smooth_keeps_length_and_shrinks_the_window_at_the_ends():
    assert smooth([0.0, 3.0, 0.0, 3.0]) == pytest.approx([1.5, 1.0, 2.0, 1.5])


def test_double_descent_curve_gives_dip_peak_collapse_at_their_rounds():
    phases = detect_phases(rounds_of(DD_TEST, DD_TRAIN))
    assert phases["double_descent"] is True
    assert phases["dense"]["test_acc"] == 0.68
    assert phases["dip"]["round"] == 9 and phases["dip"]["test_acc"] == 0.57
    assert phases["dip"]["sparsity"] == pytest.approx(1 - 0.8**9)
    assert phases["peak"]["round"] == 16 and phases["peak"]["test_acc"] == 0.83
    # round 18 (74%, smoothed 72%) fell 10 points from the peak but is still above the dense 68%: not
    # collapsed (issue 17 said so; this assertion was 18 before); round 19 (60%) is below it
    assert phases["collapse"]["round"] == 19
    assert phases["train_leaves"]["round"] == 9  # 0.99 is within 2 points of 100%; 0.92 is not
    names = [span["name"] for span in phases["phases"]]
    assert names == ["light", "critical", "sweet", "collapsed"]
    spans = phases["phases"]
    assert all(a["to_round"] == b["from_round"] for a, b in zip(spans, spans[1:]))
    assert spans[1]["from_round"] < 9 < spans[1]["to_round"] <= 16


def test_noise_of_a_point_moves_dip_and_peak_by_at_most_a_round():
    noisy = [t + w for t, w in zip(DD_TEST, WIGGLE)]
    phases = detect_phases(rounds_of(noisy, DD_TRAIN))
    assert phases["double_descent"] is True
    assert abs(phases["dip"]["round"] - 9) <= 1
    assert abs(phases["peak"]["round"] - 16) <= 1


def test_one_lucky_round_on_a_flat_curve_is_not_a_double_descent():
    flat = [0.70] * 12
    flat[6] = 0.73  # a single 3-point spike: 1 point after smoothing
    phases = detect_phases(rounds_of(flat))
    assert phases["double_descent"] is False
    assert phases["reason"].startswith("flat")
    assert phases["dip"] is None and phases["peak"] is None and phases["phases"] == []


def test_monotone_decline_has_no_sweet_peak():
    phases = detect_phases(rounds_of([0.80 - 0.02 * i for i in range(15)]))
    assert phases["double_descent"] is False
    assert "no sweet peak" in phases["reason"]


def test_monotone_rise_has_no_critical_dip():
    phases = detect_phases(rounds_of([0.60 + 0.01 * i for i in range(15)]))
    assert phases["double_descent"] is False
    assert "no critical dip" in phases["reason"]


def test_too_few_rounds_still_reports_the_dense_accuracy():
    phases = detect_phases(rounds_of([0.7, 0.6, 0.8]))
    assert phases["double_descent"] is False
    assert "too few rounds" in phases["reason"]
    assert phases["dense"]["test_acc"] == 0.7
    assert detect_phases([])["dense"] is None


def test_rounds_without_accuracy_are_ignored_and_order_does_not_matter():
    rounds = rounds_of(DD_TEST, DD_TRAIN)
    rounds.append({"round": 21, "sparsity": 0.99, "test_acc": None, "train_acc": None})
    shuffled = rounds[::2] + rounds[1::2]
    assert detect_phases(shuffled)["dip"] == detect_phases(rounds_of(DD_TEST, DD_TRAIN))["dip"]


def test_curve_ending_at_the_peak_has_no_collapse():
    phases = detect_phases(rounds_of(DD_TEST[:17], DD_TRAIN[:17]))
    assert phases["double_descent"] is True
    assert phases["collapse"] is None
    assert [s["name"] for s in phases["phases"]] == ["light", "critical", "sweet"]
    assert any("collapse: not reached" in line for line in phases_lines(phases))


def test_thresholds_are_parameters():
    shallow = [0.70, 0.70, 0.69, 0.685, 0.68, 0.685, 0.69, 0.70, 0.70, 0.70]
    assert detect_phases(rounds_of(shallow))["double_descent"] is False
    assert detect_phases(rounds_of(shallow), min_points=0.005)["double_descent"] is True


def test_round_lookup_helpers_name_phase_and_event():
    phases = detect_phases(rounds_of(DD_TEST, DD_TRAIN))
    assert phase_of_round(phases, 0) == "light"
    assert phase_of_round(phases, 9) == "critical"
    assert phase_of_round(phases, 16) == "sweet"
    assert phase_of_round(phases, 20) == "collapsed"
    assert event_of_round(phases, 9) == "dip" and event_of_round(phases, 16) == "peak"
    assert event_of_round(phases, 0) == "dense" and event_of_round(phases, 3) == ""
    lines = phases_lines(phases)
    assert any(line.startswith("critical dip: 57.0% at sparsity") for line in lines)
    assert any(line.startswith("sweet peak: 83.0%") for line in lines)


def test_rise_then_fall_is_a_fall_without_recovery():
    phases = detect_phases(rounds_of([0.60, 0.65, 0.67, 0.66, 0.66, 0.63, 0.61, 0.60]))
    assert phases["double_descent"] is False
    assert "no sweet peak" in phases["reason"]


def figure_one_lenet():
    """LeNet-300-100 / MNIST, 20% symmetric noise, read off the paper's Figure 1 (docs: PAPER.md): dense
    83.3%, flat to round 5, down to the critical 76.5% at round 10 (89.3% sparse), up to the sweet 95.4%
    at round 20 (98.8%), then 86.7% at round 24 (99.5%), straight lines in between. Train accuracy on
    the noisy labels leaves 100% after round 8 and falls to ~0.8 x test (the clean part) beyond."""

    def between(r, r0, a0, r1, a1):
        return a0 + (a1 - a0) * (r - r0) / (r1 - r0)

    test = [0.833 if r <= 5 else between(r, 5, 0.833, 10, 0.765) if r <= 10 else
            between(r, 10, 0.765, 20, 0.954) if r <= 20 else between(r, 20, 0.954, 24, 0.867) for r in range(25)]
    train = [1.0 if r <= 8 else between(r, 8, 1.0, 20, 0.77) if r <= 20 else between(r, 20, 0.77, 24, 0.70)
             for r in range(25)]
    return test, train


def test_the_papers_lenet_curve_has_its_phases_and_no_collapse_while_test_accuracy_is_high():
    test, train = figure_one_lenet()
    phases = detect_phases(rounds_of(test, train))
    assert phases["double_descent"] is True
    assert phases["dense"]["test_acc"] == pytest.approx(0.833)
    assert phases["dip"]["round"] == 10 and phases["dip"]["test_acc"] == pytest.approx(0.765)
    assert phases["dip"]["sparsity"] == pytest.approx(0.893, abs=1e-3)
    assert phases["peak"]["round"] == 20 and phases["peak"]["test_acc"] == pytest.approx(0.954)
    assert phases["peak"]["sparsity"] == pytest.approx(0.988, abs=1e-3)
    assert phases["train_leaves"]["round"] == 10  # where the critical dip is, as the paper finds
    # 88.9% at round 23 and 86.7% at round 24 are far below the peak but above the dense 83.3%: sweet, not collapsed
    assert phases["collapse"] is None
    assert [span["name"] for span in phases["phases"]] == ["light", "critical", "sweet"]
    assert phase_of_round(phases, 23) == "sweet" and phase_of_round(phases, 24) == "sweet"
    assert "collapse: not reached" in phases_lines(phases)


def test_the_lenet_curve_collapses_once_test_accuracy_falls_below_the_dense_level():
    test, train = figure_one_lenet()
    test, train = test + [0.75, 0.60, 0.40], train + [0.62, 0.50, 0.33]
    phases = detect_phases(rounds_of(test, train))
    assert phases["collapse"]["round"] == 25  # round 24 (86.7%) is still above the dense 83.3%
    assert [span["name"] for span in phases["phases"]] == ["light", "critical", "sweet", "collapsed"]


def test_a_fall_while_train_accuracy_climbs_back_is_not_a_collapse():
    test = DD_TEST[:19] + [0.55, 0.50]
    train = DD_TRAIN[:17] + [0.58, 0.70, 0.80, 0.90]  # fitting the noisy labels again: overfitting, not collapse
    phases = detect_phases(rounds_of(test, train))
    assert phases["double_descent"] is True and phases["collapse"] is None
    falling = DD_TRAIN[:19] + [0.40, 0.30]
    assert detect_phases(rounds_of(test, falling))["collapse"]["round"] == 19
