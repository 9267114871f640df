"""The CPU demo must show sparse double descent: a dip below dense, then a peak well above it."""

import pytest

from sdd_tui.core.config import load_preset
from sdd_tui.core.events import RoundEnded


@pytest.mark.slow
def test_digits_noise40_shows_the_dip_and_the_peak(run_experiment, home):
    run_id, status, events = run_experiment(load_preset("digits-noise40"), home, preset="digits-noise40")
    assert status == "finished"
    rounds = [e.result for e in events if isinstance(e, RoundEnded)]
    assert len(rounds) == 31
    dense = rounds[0]["test_acc"]
    middle = [r["test_acc"] for r in rounds if 0.5 <= r["sparsity"] <= 0.95]
    sparse = [r["test_acc"] for r in rounds if r["sparsity"] > 0.95]
    assert min(middle) <= dense - 0.05, (dense, min(middle))
    assert max(sparse) >= dense + 0.08, (dense, max(sparse))
    for r in rounds:
        assert abs(r["sparsity"] - (1 - 0.8 ** r["round"])) < 1e-4
