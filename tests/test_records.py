"""Typed records and options (core/history/records.py, core/analysis/redense_options.py, core/sweeps/engine_options.py): parsed once,
read as attributes, and the stored JSON left exactly as it was."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.analysis.redense_options import RedenseOptions
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.records import RunRecord, SweepRecord
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import RunPaths
from sdd_tui.core.sweeps.engine_options import EngineOptions, engine_options

STORED = {"id": "20260101-000000-abcd", "name": "n", "status": "finished", "started": 3, "ended": 4.5,
          "pid": None, "tags": ["a"], "note": "", "config": {"runtime": {"device": "cpu"}},
          "a_field_of_a_newer_version": {"kept": [1, 2]}, "rounds": [{"round": 0, "sparsity": 0.0, "test_acc": 0.5}]}


def test_a_record_with_an_unknown_field_round_trips_unchanged():
    record = RunRecord.parse(json.loads(json.dumps(STORED)))
    assert record.id == STORED["id"] and record.tags == ["a"] and record.rounds[0]["test_acc"] == 0.5
    assert record.a_field_of_a_newer_version == {"kept": [1, 2]}
    assert json.dumps(record.to_dict()) == json.dumps(STORED)  # same keys, order and types (3 stays an int)
    record.note = "set later"
    assert record.to_dict() == {**STORED, "note": "set later"}


def test_the_store_parses_a_run_once_and_keeps_what_it_does_not_know(home):
    store = Store(home)
    store.create_run(STORED)
    assert store.run(STORED["id"][:10]).to_dict() == store.get_run(STORED["id"])
    assert store.get_run(STORED["id"])["a_field_of_a_newer_version"] == {"kept": [1, 2]}


@pytest.mark.parametrize("field, value", [("status", 7), ("pid", True), ("tags", "a,b"), ("started", "noon"),
                                          ("config", [1])])
def test_a_field_of_the_wrong_type_is_one_line_naming_run_and_field(field, value):
    with pytest.raises(SddError) as error:
        RunRecord.parse({**STORED, field: value})
    assert str(error.value).startswith(f"run {STORED['id']} has a {field} of type {type(value).__name__}")
    assert "\n" not in str(error.value)


def test_runs_show_of_a_hand_broken_record_is_an_error_line_and_exit_2(home):
    Store(home).create_run(STORED)
    path = RunPaths(home, STORED["id"]).record
    path.write_text(json.dumps({**json.loads(path.read_text()), "status": 7}))
    result = CliRunner().invoke(app, ["runs", "show", STORED["id"], "--home", str(home)])
    assert result.exit_code == 2 and "has a status of type int" in result.output, result.output
    assert "Traceback" not in result.output
    assert json.loads(path.read_text())["status"] == 7  # nothing rewritten


def test_redense_options_check_themselves_once():
    options = RedenseOptions(rounds=[5, 10])
    assert options.rounds == (5, 10) and options.short_epochs == 10 and options.result_key == "redense"
    assert RedenseOptions(rounds=(1,), branch="reinit").result_key == "redense_reinit"
    for bad, words in [({"rounds": ()}, "needs --rounds"), ({"epochs": 0}, "--epochs must be >= 1"),
                       ({"official": True, "epochs": 3}, "leave out --epochs"), ({"lr": 11.0}, "--lr 11.0"),
                       ({"bn": "mean"}, "--bn 'mean'"), ({"branch": "x"}, "--branch 'x'"),
                       ({"device": "gpu"}, "--device 'gpu'"), ({"official": True, "lr": 0.1}, "leave out --branch")]:
        with pytest.raises(SddError, match=words):
            RedenseOptions(**{"rounds": (1,), **bad})
    with pytest.raises(AttributeError):
        options.epochs = 3  # frozen: what the CLI checked is what analyze_run gets


def test_engine_options_take_the_given_then_the_sweeps_then_the_defaults(home):
    store = Store(home)
    previous = SweepRecord.parse({"id": "sw-1", "engine": "local", "max_parallel": 4, "pack": True, "pack_size": 8})
    options = engine_options(previous, None, None, None, None, None, store, retries=5)
    assert options == EngineOptions(engine="local", max_parallel=4, pack=True, pack_size=8, cpus_per_member=1.0,
                                    worker_home=str(store.home), retries=5)
    assert "retries" not in options.record_fields() and options.record_fields()["max_parallel"] == 4
    assert engine_options(previous, None, None, 2, None, None, store, pack=False).max_parallel == 2
    with pytest.raises(SddError, match="--address is for --engine ray"):
        engine_options(None, "local", "auto", None, None, None, store)


def test_a_sweep_record_round_trips_and_names_its_members():
    from sdd_tui.core.history.records import SweepRecord

    stored = {"id": "sw-1", "name": "s", "members": [{"run_id": "r1", "seed": 0}], "seeds": [0], "grid": {},
              "pack": True, "pack_size": 8, "a_newer_field": 1}
    sweep = SweepRecord.parse(stored)
    assert json.dumps(sweep.to_dict()) == json.dumps(stored) and sweep.member("r1")["seed"] == 0
    with pytest.raises(SddError, match="sweep sw-1 has no member r2"):
        sweep.member("r2")
    with pytest.raises(SddError, match="sweep sw-1 has a seeds of type list"):
        SweepRecord.parse({**stored, "seeds": ["zero"]})
