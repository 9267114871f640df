"""Phases in the run JSON, the CSV export and `runs show`."""

from __future__ import annotations

import csv
import io

from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.analysis.results import csv_text, run_json
from sdd_tui.core.history.records import RunRecord
from sdd_tui.core.history.store import Store
from tests.test_figures import record


def typed(*args, **kwargs) -> RunRecord:
    """test_figures' record dict as the store hands it to readers: parsed once."""
    return RunRecord.parse(record(*args, **kwargs))


OLD_KEYS = {"id", "name", "status", "preset", "device", "started", "ended", "error", "config", "rounds"}


def test_run_json_adds_phases_and_keeps_every_old_key():
    view = run_json(typed("a", reinit=True))
    assert OLD_KEYS <= set(view)
    assert view["phases"]["double_descent"] is True and view["phases"]["dip"]["round"] == 9
    assert view["branch_phases"]["reinit"]["dip"]["round"] == 9  # the same curve 5 points lower
    assert view["analyses"] == {}
    assert "branch_phases" in run_json(typed("b")) and run_json(typed("b"))["branch_phases"] == {}


def test_csv_rows_carry_phase_event_and_reinit_columns():
    rows = list(csv.DictReader(io.StringIO(csv_text(typed("a", reinit=True)))))
    assert rows[0]["phase"] == "light" and rows[0]["phase_event"] == "dense"
    assert rows[9]["phase"] == "critical" and rows[9]["phase_event"] == "dip"
    assert rows[16]["phase_event"] == "peak"
    assert rows[9]["learning_distance"] == "19" and rows[9]["reinit.learning_distance"] == "14"
    assert rows[0]["config.noise.rate"] == "0.4"


def test_runs_show_prints_the_phases(tmp_path):
    Store(tmp_path).create_run(record("run-a"))
    result = CliRunner().invoke(app, ["runs", "show", "run-a", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "critical dip: 57.0% at sparsity 86.58% (round 9)" in result.output
    assert "sweet peak: 83.0% at sparsity 97.19% (round 16)" in result.output
