import json

import pytest
from sdd_test_helpers import run_record

from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import Store


def record(run_id, started=0.0, **extra):
    return run_record(run_id, started=started, **extra)


def test_round_trip_of_records_and_rounds(home):
    store = Store(home)
    store.create_run(record("20260101-000000-aaaa", started=1.0))
    store.add_round("20260101-000000-aaaa", {"round": 1, "test_acc": 0.5})
    store.add_round("20260101-000000-aaaa", {"round": 0, "test_acc": 0.4})
    store.add_round("20260101-000000-aaaa", {"round": 1, "test_acc": 0.6})  # replaced, not duplicated
    again = Store(home).get_run("20260101-000000-aaaa")
    assert [r["round"] for r in again["rounds"]] == [0, 1]
    assert again["rounds"][1]["test_acc"] == 0.6
    assert json.loads((home / "store.json").read_text())  # plain JSON on disk


def test_prefix_lookup_ambiguity_and_listing_order(home):
    store = Store(home)
    store.create_run(record("20260101-000000-aaaa", started=1.0))
    store.create_run(record("20260101-000000-aabb", started=2.0))
    assert store.get_run("20260101-000000-aaa")["id"] == "20260101-000000-aaaa"
    with pytest.raises(SddError, match="ambiguous"):
        store.get_run("20260101-000000-aa")
    with pytest.raises(SddError, match="no run"):
        store.get_run("nope")
    assert [r["id"] for r in store.list_runs()] == ["20260101-000000-aabb", "20260101-000000-aaaa"]


def test_delete_removes_record_and_folder(home):
    store = Store(home)
    store.create_run(record("20260101-000000-aaaa"))
    assert store.run_dir("20260101-000000-aaaa").is_dir()
    store.delete_run("20260101-000000-aaaa")
    assert store.list_runs() == [] and not store.run_dir("20260101-000000-aaaa").exists()


def test_a_run_is_recorded_with_its_events_and_checkpoint(run_experiment, home, smoke_config):
    run_id, _, events = run_experiment(smoke_config(), home)
    stored = Store(home).get_run(run_id)
    assert stored["status"] == "finished" and stored["ended"] >= stored["started"]
    assert stored["config"]["name"] == "smoke" and stored["versions"]["torch"]
    assert len(stored["rounds"]) == 4
    lines = (home / "runs" / run_id / "events.jsonl").read_text().splitlines()
    assert len(lines) == len(events)
    assert json.loads(lines[0])["type"] == "RunStarted" and json.loads(lines[-1])["type"] == "RunEnded"
    assert (home / "runs" / run_id / "checkpoint.pt").stat().st_size > 0
