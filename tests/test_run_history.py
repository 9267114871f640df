"""The run history at scale and the questions asked of it: a summary per run in store.json, rounds and
config in the run folder, a first-format store converted on first open, --where / --status / --tag,
tags and notes, diff, provenance, --from-run, export and load_runs."""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys

import pytest
import torch
from sdd_test_helpers import error_line, files_of, invoke

from sdd_tui import load_runs
from sdd_tui.core import provenance
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.query import RunQuery
from sdd_tui.core.history.store import Store
from sdd_tui.screens.history import filter_rows, history_row

# A record as today's (first-format) store.json holds it: copied from a real digits-noise40 run
# (train.epochs=1), its 31 rounds cut to 3.
REAL_RECORD = {
    "id": "20261130-012108-3306", "name": "digits-noise40", "preset": "digits-noise40",
    "config": {"name": "digits-noise40",
               "description": "CPU demo: MLP 64-300-100-10 on scikit-learn digits, 40% symmetric noise, 30 rounds "
                              "(~1 min)",
               "data": {"name": "digits", "data_dir": None, "download": False, "train_size": None, "test_size": None,
                        "num_classes": 10, "shape": [1, 8, 8], "synthetic_train": 512, "synthetic_test": 256},
               "noise": {"kind": "symmetric", "rate": 0.4, "seed": None},
               "model": {"name": "mlp", "width": 1.0, "hidden": [300, 100]},
               "train": {"epochs": 1, "batch_size": 64, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
                         "weight_decay": 0.0, "milestones": [], "gamma": 0.1, "augment": False,
                         "eval_batch_size": 1024},
               "prune": {"method": "magnitude", "scope": "global", "fraction": 0.2, "rounds": 30, "layers": "all"},
               "retrain": {"mode": "rewind", "rewind_iteration": 0, "finetune_lr": 0.001, "compare_reinit": False},
               "analysis": {"learning_distance": True},
               "runtime": {"device": "auto", "seed": 1, "threads": 1, "fast": True, "compile": False,
                           "checkpoint_every": 0, "checkpoint_minutes": 5.0}},
    "status": "finished", "host": "vm", "pid": 23219, "device": "cpu",
    "versions": {"python": "3.11.7", "torch": "2.14.1+cu130", "torchvision": "0.29.1+cu130"},
    "started": 1796001673.368406, "ended": 1796001682.0299819, "error": "",
    "rounds": [
        {"round": 0, "sparsity": 0.0, "remaining": 50200, "total": 50200, "test_acc": 0.7839195728302002,
         "test_loss": 1.1012408641514866, "best_test_acc": 0.7839195728302002, "best_epoch": 1,
         "train_acc": 0.5416666865348816, "train_loss": 1.623008015950521, "noisy_memorized": 0.04374999925494194,
         "noisy_true_acc": 0.7916666865348816, "learning_distance": 3.695457681461323, "seconds": 0.2599455949998628},
        {"round": 1, "sparsity": 0.19999999999999996, "remaining": 40160, "total": 50200,
         "test_acc": 0.8090452551841736, "test_loss": 0.9945802417033082, "best_test_acc": 0.8090452551841736,
         "best_epoch": 1, "train_acc": 0.5508333444595337, "train_loss": 1.5655626424153646,
         "noisy_memorized": 0.0520833320915699, "noisy_true_acc": 0.8020833134651184,
         "learning_distance": 3.256580623015845, "seconds": 0.21934111300015502},
        {"round": 2, "sparsity": 0.36, "remaining": 32128, "total": 50200, "test_acc": 0.8274706602096558,
         "test_loss": 0.9776897590164364, "best_test_acc": 0.8274706602096558, "best_epoch": 1,
         "train_acc": 0.5633333325386047, "train_loss": 1.5361288452148438, "noisy_memorized": 0.05833333358168602,
         "noisy_true_acc": 0.7958333492279053, "learning_distance": 4.635643259860866, "seconds": 0.26291424900000493},
    ],
}


def a_run(run_id: str, rate: float = 0.4, mode: str = "rewind", seed: int = 1, status: str = "finished",
          started: float = 1.0, **extra) -> dict:
    record = copy.deepcopy(REAL_RECORD)
    record["config"]["noise"]["rate"] = rate
    record["config"]["retrain"]["mode"] = mode
    record["config"]["runtime"]["seed"] = seed
    record.update(id=run_id, status=status, started=started, **extra)
    return record


@pytest.fixture
def four_runs(home):
    store = Store(home)
    store.create_run(a_run("run-a-0001", 0.4, "rewind", started=1.0, tags=["paper"]))
    store.create_run(a_run("run-b-0002", 0.4, "finetune", started=2.0, tags=["paper"]))
    store.create_run(a_run("run-c-0003", 0.2, "rewind", started=3.0, tags=["paper", "v2"]))
    store.create_run(a_run("run-d-0004", 0.4, "rewind", status="stopped", started=4.0, tags=["paper"]))
    return store


# ---------------------------------------------------------------------------- the two halves of a record


def test_a_round_end_writes_the_run_folder_and_never_store_json(home):
    store = Store(home)
    store.create_run(a_run("run-live-01", status="running", rounds=[], pid=None))
    before = (home / "store.json").read_bytes()
    for result in REAL_RECORD["rounds"]:
        store.add_round("run-live-01", result)
    assert (home / "store.json").read_bytes() == before
    assert json.loads((home / "runs" / "run-live-01" / "rounds.json").read_text()) == REAL_RECORD["rounds"]
    (listed,) = store.summaries()  # recorded as running: summarised from its folder
    assert listed["summary"]["rounds_done"] == 2 and listed["summary"]["best_acc"] == pytest.approx(0.8275, abs=1e-4)
    assert "rounds" not in listed and "config" not in listed


def test_store_json_holds_small_summaries_and_the_folder_the_whole_record(four_runs, home):
    runs = json.loads((home / "store.json").read_text())["runs"]
    assert all("rounds" not in doc and "config" not in doc for doc in runs.values())
    assert {doc["id"]: doc["settings"] for doc in runs.values()}["run-b-0002"] == {"retrain.mode": "finetune"}
    whole = four_runs.get_run("run-b")
    assert whole["rounds"] == REAL_RECORD["rounds"] and whole["config"]["retrain"]["mode"] == "finetune"
    assert whole["versions"] == REAL_RECORD["versions"]


def test_a_first_format_store_is_converted_on_first_open_with_a_backup(home):
    home.mkdir()
    records = [a_run("20261130-012108-3306"), a_run("20261130-020000-beef", rate=0.2, started=5.0, status="failed")]
    first_format = {"runs": {"1": records[0], "2": records[1]},
                    "sweeps": {"1": {"id": "sw-20261130-000000-0001", "name": "s", "members": [], "created": 1.0}}}
    (home / "store.json").write_text(json.dumps(first_format))
    original = (home / "store.json").read_bytes()

    listed = Store(home).summaries()

    assert [r["id"] for r in listed] == ["20261130-020000-beef", "20261130-012108-3306"]
    assert (home / "store.json.format1-backup").read_bytes() == original
    for record in records:
        assert Store(home).get_run(record["id"]) == {**record, "tags": [], "note": ""}
    assert Store(home).list_sweeps()[0]["id"] == "sw-20261130-000000-0001"
    assert (home / "sweeps" / "sw-20261130-000000-0001.json").exists()
    Store(home).summaries()  # converted once: no second backup
    assert not list(home.glob("store.json.format1-backup-*"))


def test_import_runs_adds_many_at_once(home):
    store = Store(home)
    store.create_run(a_run("run-first-1"))
    store.import_runs([a_run(f"run-many-{i:03d}", rate=0.1 * (i % 5), started=10.0 + i) for i in range(20)])
    assert len(store.summaries()) == 21
    assert store.get_run("run-many-007")["config"]["noise"]["rate"] == pytest.approx(0.2)
    selected = RunQuery.parse(["noise.rate=0.2"]).select(store.summaries())
    assert sorted(r["id"] for r in selected) == ["run-many-002", "run-many-007", "run-many-012", "run-many-017"]


def test_settings_stay_right_when_the_first_real_config_arrives_late(home):
    store = Store(home)
    store.create_run({"id": "empty-config", "name": "x", "config": {}, "status": "finished", "started": 0.0,
                      "rounds": []})
    store.import_runs([a_run("real-1"), a_run("real-2", rate=0.2)])
    store.create_run(a_run("real-3", mode="finetune"))
    assert sorted(r["id"] for r in RunQuery.parse(["noise.rate=0.4"]).select(store.summaries())) == ["real-1",
                                                                                                      "real-3"]
    others = RunQuery.parse(["noise.rate!=0.4"]).select(store.summaries())
    assert sorted(r["id"] for r in others) == ["empty-config", "real-2"]
    assert {r["id"]: dict(r["settings"]).get("retrain.mode") for r in store.summaries()} == {
        "empty-config": None, "real-1": "rewind", "real-2": "rewind", "real-3": "finetune"}
    one_by_one = Store(home / "second")
    one_by_one.create_run({"id": "empty-config", "name": "x", "config": {}, "status": "finished", "started": 0.0})
    one_by_one.create_run(a_run("real-1"))
    assert [r["id"] for r in RunQuery.parse(["noise.rate=0.4"]).select(one_by_one.summaries())] == ["real-1"]


# ---------------------------------------------------------------------------- which runs?


def test_runs_where_status_and_tag_select(four_runs, home):
    result = invoke("runs", "--where", "noise.rate=0.4", "--where", "retrain.mode=rewind", "--status", "finished",
                    "--tag", "paper", "--json", "--home", str(home))
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.output)] == ["run-a-0001"]
    wider = json.loads(invoke("runs", "--where", "noise.rate>=0.3", "--json", "--home", str(home)).output)
    assert [r["id"] for r in wider] == ["run-d-0004", "run-b-0002", "run-a-0001"]
    tagged = json.loads(invoke("runs", "--tag", "v2", "--json", "--home", str(home)).output)
    assert [(r["id"], r["tags"]) for r in tagged] == [("run-c-0003", ["paper", "v2"])]
    listing = invoke("runs", "--home", str(home)).output
    assert listing.splitlines()[0].split() == ["id", "name", "status", "seed", "rounds", "noise", "mode", "dense",
                                               "best", "at", "sparsity", "started", "tags", "note"]
    assert "paper,v2" in listing


@pytest.mark.parametrize(("args", "expected"), [
    (["runs", "--where", "noise.rat=0.4"], "unknown field 'noise.rat'; did you mean noise.rate"),
    (["runs", "--where", "noise.rate"], "give field=value"),
    (["runs", "--where", "noise.rate=high"], "noise.rate is a number"),
    (["runs", "--status", "done"], "--status 'done': use one of"),
    (["runs", "diff", "run-a", "nosuch"], "no run 'nosuch'"),
    (["runs", "tag", "run-a", "my tag"], "tag 'my tag' is not one word"),
    (["runs", "untag", "run-a", "a,b"], "tag 'a,b' is not one word"),
    (["runs", "tag", "nosuch", "paper"], "no run 'nosuch'"),
    (["runs", "export", "-o", "out.csv"], "say which runs"),
])
def test_bad_questions_are_one_line_exit_2_and_change_nothing(four_runs, home, args, expected):
    before = files_of(home)
    result = invoke(*args, "--home", str(home))
    assert result.exit_code == 2, result.output
    assert expected in error_line(result)
    assert files_of(home) == before


def test_history_screen_filter_takes_field_value_words(four_runs):
    rows = [history_row(r) for r in four_runs.summaries()]
    assert [r["id"] for r in filter_rows(rows, "noise.rate=0.4 retrain.mode=rewind")] == ["run-d-0004", "run-a-0001"]
    assert [r["id"] for r in filter_rows(rows, "#v2")] == ["run-c-0003"]
    assert [r["id"] for r in filter_rows(rows, "stopped noise.rate<0.5")] == ["run-d-0004"]
    with pytest.raises(SddError, match="unknown field 'nois.rate'"):
        filter_rows(rows, "nois.rate=0.4")


# ---------------------------------------------------------------------------- notes, diff


def test_tags_and_notes_show_in_runs_and_show(four_runs, home):
    assert invoke("runs", "tag", "run-a", "best", "paper", "--home", str(home)).exit_code == 0
    assert invoke("runs", "untag", "run-a", "paper", "--home", str(home)).exit_code == 0
    assert invoke("runs", "note", "run-a", "the clean one\nsecond line", "--home", str(home)).exit_code == 0
    record = four_runs.get_run("run-a")
    assert record["tags"] == ["best"] and record["note"] == "the clean one\nsecond line"
    row = next(line for line in invoke("runs", "--home", str(home)).output.splitlines() if "run-a-0001" in line)
    assert "best" in row and "the clean one" in row and "second line" not in row
    shown = invoke("runs", "show", "run-a", "--home", str(home)).output
    assert "tags: best" in shown and "note: the clean one" in shown
    as_json = json.loads(invoke("runs", "show", "run-a", "--json", "--home", str(home)).output)
    assert as_json["tags"] == ["best"] and as_json["note"].startswith("the clean one")
    history = history_row(next(r for r in four_runs.summaries() if r["id"] == "run-a-0001"))
    assert history["tags"] == "#best" and history["note"] == "the clean one"


def test_diff_lists_config_and_provenance_that_differ(four_runs, home):
    four_runs.update_run("run-a-0001", provenance={"torch": "2.4.0", "host": "a"})
    four_runs.update_run("run-b-0002", provenance={"torch": "2.5.1", "host": "a"})
    result = invoke("runs", "diff", "run-a", "run-b", "--json", "--home", str(home))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"field": "retrain.mode", "a": "rewind", "b": "finetune"},
                                         {"field": "provenance.torch", "a": "2.4.0", "b": "2.5.1"}]
    text = invoke("runs", "diff", "run-a", "run-b", "--home", str(home)).output
    assert "retrain.mode" in text and "finetune" in text and "provenance.host" not in text
    same = invoke("runs", "diff", "run-a", "run-a-0001", "--home", str(home)).output
    assert "same config, preset and provenance" in same


# ---------------------------------------------------------------------------- provenance, --from-run


def test_provenance_names_the_git_commit_and_dirty_tree(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    assert provenance.collect(tmp_path)["git"] is None
    git("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    found = provenance.collect(tmp_path)
    assert found["git"]["commit"] == head and found["git"]["dirty"] is False
    (tmp_path / "f.txt").write_text("b")
    assert provenance.collect(tmp_path)["git"]["dirty"] is True
    assert found["torch"] == torch.__version__ and found["python"].count(".") == 2
    assert found["cpu"] and found["gpu_count"] == torch.cuda.device_count() and found["command"]


def test_a_run_records_its_provenance_and_from_run_starts_again_with_one_change(run_experiment, home, smoke_config):
    run_id, status, _ = run_experiment(smoke_config("train.epochs=1", "prune.rounds=1"), home)
    assert status == "finished"
    stored = Store(home).get_run(run_id)
    assert stored["provenance"]["torch"] == torch.__version__ and stored["provenance"]["host"]
    shown = json.loads(invoke("runs", "show", run_id, "--json", "--home", str(home)).output)
    assert shown["provenance"]["python"] == stored["provenance"]["python"]
    assert "provenance: sdd-tui" in invoke("runs", "show", run_id, "--home", str(home)).output

    again = invoke("--from-run", run_id[:-1], "--set", "noise.rate=0.6", "--home", str(home))
    assert again.exit_code == 0, again.output
    (new,) = [r for r in Store(home).list_runs() if r["id"] != run_id]
    assert new["config"]["noise"]["rate"] == 0.6
    assert {**new["config"], "noise": None} == {**stored["config"], "noise": None}
    assert new["preset"] == stored["preset"]
    both = invoke("--from-run", run_id, "--preset", "smoke", "--home", str(home))
    assert both.exit_code == 2 and "one of them" in error_line(both)


# ---------------------------------------------------------------------------- the table: export and load_runs


@pytest.fixture(scope="module")
def two_real_runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("table")
    for rate in ("0.2", "0.4"):
        result = invoke("--preset", "smoke", "--set", "train.epochs=2", "--set", "prune.rounds=1",
                        "--set", f"noise.rate={rate}", "--home", str(home))
        assert result.exit_code == 0, result.output
    return home


def test_load_runs_rows_per_run_and_round(two_real_runs):
    rows = load_runs(two_real_runs, where=["noise.rate=0.4"])
    assert len(rows) == 2 and {r["round"] for r in rows} == {0, 1}
    row = rows[0]
    assert row["noise.rate"] == 0.4 and row["model.name"] == "mlp" and 0 <= row["test_acc"] <= 1
    assert row["provenance.torch"] == torch.__version__ and row["tags"] == "" and row["row"] == "round"
    assert len(load_runs(two_real_runs)) == 4
    with_epochs = load_runs(two_real_runs, where=["noise.rate=0.4"], epochs=True)
    epochs = [r for r in with_epochs if r["row"] == "epoch"]
    assert [(r["round"], r["epoch"]) for r in epochs] == [(0, 1), (0, 2), (1, 1), (1, 2)]


def test_load_runs_as_a_data_frame_or_a_one_line_error_without_pandas(two_real_runs, monkeypatch):
    import pandas  # in the `test` extra: CI tests the data frame too

    frame = load_runs(two_real_runs, as_frame=True)
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 4 and "noise.rate" in frame.columns
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(SddError, match=r"pip install 'sdd-tui\[pandas\]'"):
        load_runs(two_real_runs, as_frame=True)


def test_runs_export_writes_the_same_table(two_real_runs, tmp_path):
    out = tmp_path / "runs.csv"
    result = invoke("runs", "export", "--all", "--epochs", "-o", str(out), "--home", str(two_real_runs))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    expected = load_runs(two_real_runs, epochs=True)
    assert len(rows) == len(expected) == 4 + 8
    assert [r["run_id"] for r in rows] == [r["run_id"] for r in expected]
    assert {r["noise.rate"] for r in rows} == {"0.2", "0.4"}
    selected = tmp_path / "some.csv"
    invoke("runs", "export", "--where", "noise.rate=0.2", "-o", str(selected), "--home", str(two_real_runs))
    assert {r["noise.rate"] for r in csv.DictReader(selected.open())} == {"0.2"}


@pytest.mark.slow
def test_runs_lists_the_newest_hundred_unless_asked_for_more(tmp_path):
    from sdd_tui.core.history.store import Store

    store = Store(tmp_path)
    store.import_runs([a_run(f"run-{index:04d}", started=float(index)) for index in range(105)])
    lines = invoke("runs", "--home", str(tmp_path)).output.splitlines()
    assert len(lines) == 1 + 100 + 1 and lines[1].startswith("run-0104") and lines[100].startswith("run-0005")
    assert lines[-1] == "... and 5 older run(s): --all shows them, --where narrows"
    assert len(invoke("runs", "--all", "--home", str(tmp_path)).output.splitlines()) == 1 + 105
    assert len(invoke("runs", "-n", "3", "--home", str(tmp_path)).output.splitlines()) == 1 + 3 + 1
    assert len(json.loads(invoke("runs", "--json", "--home", str(tmp_path)).output)) == 105
