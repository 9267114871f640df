"""The store half of issue 12: ids never leave the home, nothing is lost to a delete, a repair or a
record of the wrong shape, and a locked store, a read-only home or a bad --home is one line, exit 2."""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest
from sdd_test_helpers import error_line, files_of, invoke, run_record

from sdd_tui.core.errors import SddError
from sdd_tui.core.history import store as store_module
from sdd_tui.core.history.store import Store, StoreRecorder
from sdd_tui.core.paths import RunPaths


def record(run_id: str, **extra) -> dict:
    return run_record(run_id, **{"config": {"noise": {"rate": 0.2}}, "started": 1.0,
                                 "rounds": [{"round": 0, "sparsity": 0.0, "test_acc": 0.5}], **extra})


def first_format(home, *records, sweeps=None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tables = {"runs": {str(i): r for i, r in enumerate(records, 1)}, "sweeps": sweeps or {}}
    (home / "store.json").write_text(json.dumps(tables))


# ---------------------------------------------------------------------------- ids and folders


@pytest.mark.parametrize("bad", ["../../x", "..", "a/b", "", ".hidden", "x" * 200, "a b"])
def test_a_run_id_that_could_leave_the_home_is_refused(tmp_path, bad):
    with pytest.raises(SddError, match="is not valid"):
        RunPaths(tmp_path, bad)


def test_a_stored_id_pointing_outside_runs_cannot_make_delete_remove_it(tmp_path):
    home, victim = tmp_path / "home", tmp_path / "victim"
    (victim / "inside").mkdir(parents=True)
    first_format(home, record("../../victim"), record("good-run-1"))
    listing = invoke("runs", "--home", str(home))
    assert listing.exit_code == 0 and "good-run-1" in listing.output and "victim" not in listing.stdout
    assert "1 record(s)" in listing.stderr and "wrong shape" in listing.stderr
    for target in ("../../victim", "../..", "../../v"):
        result = invoke("runs", "delete", target, "--yes", "--home", str(home))
        assert result.exit_code == 2
        assert "no run" in error_line(result)
    assert (victim / "inside").is_dir()


def test_a_run_folder_that_is_a_symlink_is_refused(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    store = Store(home)
    store.create_run(record("linked-run"))
    shutil.move(store.run_dir("linked-run"), elsewhere)
    (home / "runs" / "linked-run").symlink_to(elsewhere, target_is_directory=True)
    for args in (["runs", "delete", "linked-run", "--yes"], ["runs", "show", "linked-run"]):
        result = invoke(*args, "--home", str(home))
        assert result.exit_code == 2
        assert "is a symbolic link; refused" in error_line(result)
    assert (elsewhere / "run.json").exists()
    report = invoke("doctor", "--home", str(home))
    assert report.exit_code == 1 and "is a symbolic link" in report.output


@pytest.mark.slow
def test_delete_needs_four_characters_and_yes_without_a_terminal(home):
    store = Store(home)
    store.create_run(record("20260101-000000-aaaa"))
    before = files_of(home)
    for run_id, expected in (("", "too short"), ("202", "too short"), ("2026", "without a terminal")):
        result = invoke("runs", "delete", run_id, "--home", str(home))
        assert result.exit_code == 2
        assert expected in error_line(result)
    assert files_of(home) == before
    assert invoke("runs", "delete", "2026", "--yes", "--home", str(home)).exit_code == 0
    assert store.summaries() == []


# ---------------------------------------------------------------------------- corrupt stores and doctor


@pytest.mark.parametrize("content", [b"", b"null", b"[]", b'{"runs": {"1": {"id": "x"'])
def test_an_empty_null_or_cut_store_is_corrupt_kept_and_never_overwritten(home, content, monkeypatch):
    Store(home).create_run(record("kept-run-1"))
    (home / "store.json").write_bytes(content)
    clock = itertools.count(1_000_000)
    monkeypatch.setattr(store_module.time, "time", lambda: next(clock))  # a new second on every call
    for _ in range(3):
        listing = invoke("runs", "--home", str(home))
        assert listing.exit_code == 2 and "is corrupt" in error_line(listing)
    starting = invoke("--preset", "smoke", "--home", str(home))
    assert starting.exit_code == 2 and "is corrupt" in error_line(starting)
    assert (home / "store.json").read_bytes() == content
    assert [p.read_bytes() for p in home.glob("store.json.corrupt-*")] == [content]  # one copy, not one per command
    report = invoke("doctor", "--home", str(home))
    assert report.exit_code == 1 and "does not parse" in report.output and "no problems found" not in report.output
    repaired = invoke("doctor", "--repair", "--home", str(home))
    assert "re-added run kept-run-1" in repaired.output
    assert repaired.exit_code == 0 and "no problems found" in repaired.output
    assert Store(home).get_run("kept-run-1")["rounds"] == record("x")["rounds"]


def test_repair_keeps_sweeps_and_analyses(home):
    store = Store(home)
    store.create_run(record("member-run-1"))
    store.update_run("member-run-1", analyses={"redense": {"5": {"test_acc": 0.7}}}, sweep="sw-1")
    store.create_sweep({"id": "sw-1", "name": "grid", "members": [{"run_id": "member-run-1"}], "created": 2.0})
    text = (home / "store.json").read_text()
    (home / "store.json").write_text(text[: len(text) // 2])
    assert invoke("doctor", "--repair", "--home", str(home)).exit_code == 0
    assert Store(home).get_sweep("sw-1")["members"] == [{"run_id": "member-run-1"}]
    repaired = Store(home).get_run("member-run-1")
    assert repaired["analyses"] == {"redense": {"5": {"test_acc": 0.7}}} and repaired["sweep"] == "sw-1"


def test_records_of_the_wrong_shape_are_reported_repaired_and_never_crash_runs(home):
    no_id = {k: v for k, v in record("x").items() if k != "id"}
    first_format(home, record("good-run-1"), no_id, record(7), record("str-rounds", rounds="oops"))
    listing = invoke("runs", "--json", "--home", str(home))
    assert listing.exit_code == 0, listing.output
    assert [r["id"] for r in json.loads(listing.stdout)] == ["good-run-1"]
    assert "3 record(s)" in listing.stderr
    report = invoke("doctor", "--home", str(home))
    assert report.exit_code == 1
    for problem in ("has no id", "has a int id (7)", "has `rounds` of type str"):
        assert sum(problem in line for line in report.output.splitlines()) == 1, report.output

    repaired = invoke("doctor", "--repair", "--home", str(home))
    assert repaired.exit_code == 0, repaired.output
    assert sorted(r["id"] for r in Store(home).summaries()) == ["7", "good-run-1", "str-rounds"]
    assert Store(home).get_run("str-rounds")["rounds"] == []
    (rejected,) = home.glob("store.json.rejected-*.json")
    kept = json.loads(rejected.read_text())
    assert no_id in kept and any(r.get("rounds") == "oops" for r in kept)


def test_doctor_says_one_thing_per_run_and_resume_of_a_gone_folder_says_so(home):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    store = Store(home)
    store.create_run(record("gone-run-1", status="running", pid=int(dead), host=socket.gethostname()))
    shutil.rmtree(store.run_dir("gone-run-1"))
    report = invoke("doctor", "--home", str(home))
    lines = [line for line in report.output.splitlines() if "gone-run-1" in line]
    assert len(lines) == 1 and "no folder" in lines[0] and "cannot be resumed" in lines[0]
    before = files_of(home)
    resumed = invoke("resume", "gone-run-1", "--home", str(home))
    assert resumed.exit_code == 2 and "is gone" in error_line(resumed) and "cannot be resumed" in error_line(resumed)
    assert files_of(home) == before and not store.run_dir("gone-run-1").exists()


def test_doctor_repairs_an_out_of_date_summary_and_a_lost_run_json(run_experiment, home, smoke_config):
    run_id, _, _ = run_experiment(smoke_config("train.epochs=1", "prune.rounds=1"), home)
    store = Store(home)
    (store.paths(run_id).record).unlink()
    report = invoke("doctor", "--home", str(home))
    assert report.exit_code == 1 and f"run {run_id}: no run.json" in report.output
    assert "rebuilt run" in invoke("doctor", "--repair", "--home", str(home)).output
    assert store.get_run(run_id)["status"] == "finished" and len(store.get_run(run_id)["rounds"]) == 2
    assert invoke("doctor", "--home", str(home)).output.endswith("no problems found\n")


# ---------------------------------------------------------------------------- locks, read-only homes, bad homes


HOLDER = textwrap.dedent("""
    import sys, time
    from filelock import FileLock
    lock = FileLock(sys.argv[1])
    lock.acquire()
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def hold_lock(path, seconds: float = 30) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_store_locked_by_another_process_is_one_line_and_no_run_starts(home, monkeypatch):
    Store(home).create_run(record("older-run-1"))
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT_S", 0.3)
    before = files_of(home)
    holder = hold_lock(home / "store.lock")
    try:
        result = invoke("--preset", "smoke", "--home", str(home))
        tagging = invoke("runs", "tag", "older-run-1", "x", "--home", str(home))
        listing = invoke("runs", "--home", str(home))  # reading needs no lock
    finally:
        holder.kill()
        holder.wait()
    for failed in (result, tagging):
        assert failed.exit_code == 2
        assert "is locked by another process" in error_line(failed)
    assert listing.exit_code == 0 and "older-run-1" in listing.output
    assert files_of(home) == before


def test_a_lock_taken_mid_run_loses_no_round_and_fails_in_one_line(run_experiment, home, smoke_config, monkeypatch):
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT_S", 0.3)
    holders = []
    record_round = StoreRecorder.__call__

    def locking_recorder(self, event):
        record_round(self, event)
        if type(event).__name__ == "RoundEnded" and not holders:  # another process takes the lock
            holders.append(hold_lock(home / "store.lock"))

    monkeypatch.setattr(StoreRecorder, "__call__", locking_recorder)
    try:
        with pytest.raises(SddError, match="is locked by another process"):
            run_experiment(smoke_config("train.epochs=1", "prune.rounds=2"), home)
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    (listed,) = Store(home).summaries()
    assert listed["status"] == "finished"  # the folder says so; store.json still says running
    assert [r["round"] for r in Store(home).get_run(listed["id"])["rounds"]] == [0, 1, 2]
    assert "updated run" in invoke("doctor", "--repair", "--home", str(home)).output


def read_only_mount(monkeypatch) -> None:
    """What a read-only file system does to lock files and atomic writes (both go through os.open), for a
    test run as root, whom file permissions do not stop."""
    real_open = os.open

    def open_read_only(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_read_only)


def test_read_only_commands_work_in_a_read_only_home(run_experiment, home, smoke_config, monkeypatch, tmp_path):
    run_id, _, _ = run_experiment(smoke_config("train.epochs=1", "prune.rounds=1"), home)
    (home / "store.lock").unlink()
    before = files_of(home)

    read_only_mount(monkeypatch)
    figure = tmp_path / "fig.png"
    for args in (["runs"], ["runs", "show", run_id], ["runs", "show", run_id, "--json"], ["plot", run_id, "-o",
                                                                                          str(figure)]):
        result = invoke(*args, "--home", str(home))
        assert result.exit_code == 0, (args, result.output)
    assert figure.exists()
    tagging = invoke("runs", "tag", run_id, "x", "--home", str(home))
    assert tagging.exit_code == 2 and "read-only" in error_line(tagging)
    assert files_of(home) == before


@pytest.mark.parametrize(("home_arg", "expected"), [("", "--home is empty"), ("/proc", "cannot write in /proc"),
                                                    ("/proc/nonexistent/x", "cannot create the home directory")])
def test_a_bad_home_is_one_line_exit_2(home_arg, expected):
    result = invoke("--preset", "smoke", "--set", "prune.rounds=1", "--home", home_arg)
    assert result.exit_code == 2
    assert expected in error_line(result)


async def test_watch_opens_a_run_in_a_read_only_home(run_experiment, home, smoke_config, monkeypatch):
    from sdd_tui.app import SddApp
    from sdd_tui.screens.dashboard import DashboardScreen

    run_id, _, _ = run_experiment(smoke_config("train.epochs=1", "prune.rounds=1"), home)
    (home / "store.lock").unlink()
    before = files_of(home)

    read_only_mount(monkeypatch)
    app = SddApp(store=Store(home), watch=run_id, blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(100):
            if isinstance(app.screen, DashboardScreen) and app.screen.view.status == "finished":
                break
            await pilot.pause(0.1)
        assert isinstance(app.screen, DashboardScreen) and app.screen.view.status == "finished"
        assert len(app.screen.view.results) == 2
    assert files_of(home) == before
