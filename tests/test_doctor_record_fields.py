"""A run.json whose field a hand edit left of the wrong type: the commands that read the run refuse it in one
line naming `sdd-tui doctor`, so doctor names the field, and `--repair` puts a label back to its default
(keeping the file) while a field that holds the experiment is left for the user to edit."""

from __future__ import annotations

import json

from sdd_test_helpers import add_run, error_line, invoke, run_record

from sdd_tui.core.history.store import Store

RUN_ID = "20261207-000000-abcd"
ROUNDS = [{"round": r, "sparsity": 1 - 0.8**r, "test_acc": 0.5 + r / 100, "train_acc": 1.0} for r in range(3)]


def stored(home, **fields) -> Store:
    store = add_run(Store(home), run_record(RUN_ID, name="kept", config={"prune": {"rounds": 2}}), ROUNDS)
    store.end_run(RUN_ID, status="finished")
    record = home / "runs" / RUN_ID / "run.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), **fields}))
    return store


def test_a_label_of_the_wrong_type_is_named_by_doctor_and_repaired_keeping_the_file(home):
    stored(home, tags=None)
    refused = invoke("runs", "show", RUN_ID, "--home", str(home))
    assert refused.exit_code == 2 and "sdd-tui doctor" in error_line(refused)
    report = invoke("doctor", "--home", str(home))
    assert report.exit_code == 1
    assert f"run {RUN_ID}: its run.json has a tags of type NoneType (None)" in report.output
    assert "`sdd-tui doctor --repair` sets it to []" in report.output
    repaired = invoke("doctor", "--repair", "--home", str(home))
    assert repaired.exit_code == 0, repaired.output
    assert f"set run {RUN_ID}'s tags (None) to [] in its run.json" in repaired.output
    folder = home / "runs" / RUN_ID
    assert json.loads((folder / "run.json").read_text())["tags"] == []
    (kept,) = folder.glob("run.json.before-repair-*")
    assert json.loads(kept.read_text())["tags"] is None  # what the repair replaced, kept
    shown = invoke("runs", "show", RUN_ID, "--home", str(home))
    assert shown.exit_code == 0 and "kept" in shown.output
    assert RUN_ID in invoke("runs", "--home", str(home)).output  # still listed, its three rounds with it
    assert len(Store(home).run(RUN_ID).rounds) == 3
    assert invoke("doctor", "--home", str(home)).exit_code == 0


def test_a_field_that_holds_the_experiment_is_named_and_left_to_the_user(home):
    stored(home, config="lr=0.1")
    before = (home / "runs" / RUN_ID / "run.json").read_bytes()
    report = invoke("doctor", "--home", str(home))
    assert report.exit_code == 1 and "has a config of type str ('lr=0.1')" in report.output
    assert "edit it in" in report.output and "run.json" in report.output
    invoke("doctor", "--repair", "--home", str(home))
    assert (home / "runs" / RUN_ID / "run.json").read_bytes() == before
