"""Issue 23: no command loses a round. A store whose format cannot be told is never converted or rewritten;
a repair reads every source and keeps what it replaces; read-modify-writes hold the run's lock; a sweep's
resume holds the sweep's; links and oversized files in a run folder are refused; and a randomized test of
damage and commands on a finished run with branches, tags and analyses.

One finished home (the smoke preset, with branches, a tag, a note and an analysis) is built once per module
and copied for each test, so the whole module stays fast."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.history.store import Store

BRANCHES = ("reinit", "random_prune")


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def no_crash(result) -> None:
    """A command ends with a status of its own (0, 1 or 2), never an exception."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.output


def files_of(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
            if p.is_file() and not p.is_symlink() and not p.name.endswith(".lock")}


# ---------------------------------------------------------------------------- the finished home


@pytest.fixture(scope="module")
def finished(tmp_path_factory, run_experiment):
    """(home, run id): a finished smoke run, reinit branches on rounds 1-2, random prune on round 2, a tag, a
    note and an analysis."""
    from sdd_tui.core.config import resolve_config

    home = tmp_path_factory.mktemp("finished") / "home"
    run_id, status, _ = run_experiment(resolve_config("smoke", overrides=[]), home)
    assert status == "finished"
    for kind, rounds in (("reinit", "1-2"), ("random-prune", "2")):
        result = invoke("branch", run_id, kind, "--rounds", rounds, "--home", home)
        assert result.exit_code == 0, result.output
    store = Store(home)
    store.set_tags(run_id, add=["keep"])
    store.set_note(run_id, "a note")
    store.change_run(run_id, lambda meta: {"analyses": {"redense": {"2": {"test_acc": 0.5}}}})
    return home, run_id


@pytest.fixture
def copied(finished, tmp_path):
    home, run_id = finished
    target = tmp_path / "home"
    shutil.copytree(home, target, symlinks=True)
    return target, run_id


def folder(home: Path, run_id: str) -> Path:
    return home / "runs" / run_id


def shown(home: Path, run_id: str) -> dict:
    result = invoke("runs", "show", run_id, "--json", "--home", home)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def branches_of(view: dict) -> dict[int, set[str]]:
    return {r["round"]: {b for b in BRANCHES if isinstance(r.get(b), dict)} for r in view["rounds"]}


def truth(home: Path, run_id: str) -> dict[int, dict[str, float]]:
    """Every round and branch result (its test accuracy) that events.jsonl or a round file holds, read here
    without the project's readers: {round: {"round": acc, "reinit": acc, ...}}. Links are not read (every
    command refuses them)."""
    found: dict[int, dict[str, float]] = {}

    def add(result) -> None:
        if isinstance(result, dict) and isinstance(result.get("round"), int):
            held = found.setdefault(result["round"], {})
            held["round"] = result.get("test_acc")
            for branch in BRANCHES:
                if isinstance(result.get(branch), dict):
                    held[branch] = result[branch].get("test_acc")

    events = folder(home, run_id) / "events.jsonl"
    if events.is_file() and not events.is_symlink():
        for line in events.read_bytes().decode("utf-8", "replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("type") == "RoundEnded":
                add(event.get("result"))
    rounds = folder(home, run_id) / "rounds"
    if rounds.is_dir() and not rounds.is_symlink():
        for path in rounds.glob("round-*.pt"):
            if path.is_symlink() or not path.is_file():
                continue
            try:
                add(torch.load(path, map_location="cpu", weights_only=True).get("result"))
            except Exception:  # a file this test damaged holds nothing readable
                continue
    return found


def assert_everything_shown(home: Path, run_id: str, expected: dict[int, dict[str, float]]) -> dict:
    view = shown(home, run_id)
    by_round = {r["round"]: r for r in view["rounds"]}
    for index, held in expected.items():
        assert index in by_round, (index, sorted(by_round))
        for key, acc in held.items():
            got = by_round[index] if key == "round" else by_round[index].get(key)
            assert isinstance(got, dict) and got.get("test_acc") == pytest.approx(acc), (index, key, got)
    return view


# ---------------------------------------------------------------------------- 1. a store whose format cannot be told


def edit_store(home: Path, change) -> None:
    path = home / "store.json"
    data = json.loads(path.read_text())
    new = change(data)  # a new content, or None when `change` edited `data` in place
    path.write_text(json.dumps(data if new is None else new))


def every_doc(**fields):
    def change(data: dict) -> None:
        for doc in (data.get("runs") or {}).values():
            doc.update(fields)

    return change


UNTELLABLE = {
    "no meta": lambda d: d.pop("meta", None) and None,
    "empty": lambda d: {},
    "format 1": lambda d: d.update(meta={"1": {"format": 1}}),
    "format '2'": lambda d: d.update(meta={"1": {"format": "2"}}),
    "future format": lambda d: d.update(meta={"1": {"format": 3, "baseline": {}}}),
    "meta a list": lambda d: d.update(meta={"1": ["format", 2]}),
    "baseline a list": lambda d: d["meta"]["1"].update(baseline=["x"]),
}


@pytest.mark.parametrize("how", list(UNTELLABLE))
def test_a_store_whose_format_cannot_be_told_is_never_converted_or_rewritten(copied, how):
    home, run_id = copied
    before_view = shown(home, run_id)
    edit_store(home, UNTELLABLE[how])
    before = files_of(home)
    for command in (["runs"], ["runs", "--json"], ["runs", "tag", run_id, "x"], ["sweeps"],
                    ["runs", "export", "--all", "-o", home.parent / "out.csv"]):
        result = invoke(*command, "--home", home)
        assert result.exit_code == 2, (command, result.output)
        line = error_line(result)
        assert "sdd-tui doctor" in line and "nothing was changed" in line
    assert files_of(home) == before  # nothing written, no backup, no folder rewritten
    report = invoke("doctor", "--home", home)
    assert report.exit_code == 1 and "format cannot be told" in report.output
    assert files_of(home) == before

    repaired = invoke("doctor", "--repair", "--home", home)
    assert repaired.exit_code == 0, repaired.output
    (kept,) = home.glob("store.json.before-repair-*")
    assert kept.read_bytes() == before["store.json"]
    after = shown(home, run_id)
    assert after["rounds"] == before_view["rounds"] and after["tags"] == ["keep"] and after["note"] == "a note"
    assert after["analyses"] == before_view["analyses"] and after["provenance"] == before_view["provenance"]
    assert [r["id"] for r in json.loads(invoke("runs", "--json", "--home", home).stdout)] == [run_id]


def test_a_true_first_format_store_is_still_converted(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    record = {"id": "old-run-1", "name": "n", "status": "finished", "config": {"noise": {"rate": 0.2}},
              "started": 1.0, "rounds": [{"round": 0, "sparsity": 0.0, "test_acc": 0.5}]}
    (home / "store.json").write_text(json.dumps({"runs": {"1": record}}))
    assert invoke("runs", "--home", home).exit_code == 0
    assert Store(home).get_run("old-run-1")["rounds"] == record["rounds"]
    assert (home / "store.json.format1-backup").exists()


# ---------------------------------------------------------------------------- 2, 3. repairs keep everything


@pytest.mark.parametrize("status", ["finished", 7])
def test_repair_of_a_wrong_summary_and_a_cut_rounds_json_keeps_everything(copied, status):
    home, run_id = copied
    before_view = shown(home, run_id)
    record_size = (folder(home, run_id) / "run.json").stat().st_size
    edit_store(home, lambda d: d["runs"]["1"].update(summary=["x"], status=status))
    rounds_json = folder(home, run_id) / "rounds.json"
    cut = rounds_json.read_bytes()[: rounds_json.stat().st_size // 2]
    rounds_json.write_bytes(cut)

    listing = invoke("runs", "--home", home)  # a status of 7 once crashed with a TypeError
    assert listing.exit_code == 0 and "wrong shape" in listing.stderr, listing.output
    report = invoke("doctor", "--home", home)
    assert report.exit_code == 1 and "rounds.json is corrupt" in report.output

    repaired = invoke("doctor", "--repair", "--home", home)
    assert repaired.exit_code == 0, repaired.output
    assert "rebuilt run" in repaired.output and "rounds.json.before-repair-" in repaired.output
    (kept,) = folder(home, run_id).glob("rounds.json.before-repair-*")
    assert kept.read_bytes() == cut
    assert (folder(home, run_id) / "run.json").stat().st_size >= record_size
    after = shown(home, run_id)
    for key in ("rounds", "config", "provenance", "analyses", "tags", "note", "status"):
        assert after[key] == before_view[key], key
    assert branches_of(after) == {0: set(), 1: {"reinit"}, 2: {"reinit", "random_prune"}, 3: set()}
    assert invoke("doctor", "--home", home).output.endswith("no problems found\n")


def test_repair_reads_branch_results_back_from_the_round_files(copied):
    home, run_id = copied
    expected = truth(home, run_id)
    (folder(home, run_id) / "rounds.json").write_text("[")
    (folder(home, run_id) / "run.json").unlink()
    assert invoke("doctor", "--repair", "--home", home).exit_code == 0
    view = assert_everything_shown(home, run_id, expected)
    assert branches_of(view) == {0: set(), 1: {"reinit"}, 2: {"reinit", "random_prune"}, 3: set()}
    assert view["status"] == "finished" and view["provenance"]


def test_doctor_finds_rounds_that_only_events_jsonl_holds_and_repair_puts_them_back(copied):
    home, run_id = copied
    rounds_json = folder(home, run_id) / "rounds.json"
    rounds = json.loads(rounds_json.read_text())
    rounds_json.write_text(json.dumps(rounds[:2]))
    report = invoke("doctor", "--home", home)
    assert report.exit_code == 1 and "lacks round(s) 2, 3" in report.output
    invoke("doctor", "--repair", "--home", home)
    assert json.loads(rounds_json.read_text()) == rounds  # the branches of round 2 came back from its round file


def test_a_write_that_would_hold_less_keeps_the_original(copied):
    from sdd_tui.core.history.run_folder import RunFolder
    from sdd_tui.core.paths import RunPaths

    home, run_id = copied
    paths = RunPaths(home, run_id)
    before = paths.rounds.read_bytes()
    meta = json.loads(paths.record.read_text())
    kept = RunFolder(paths).write(meta, [])  # a conversion or a start-over that would drop every round
    assert [p.read_bytes() for p in kept] == [before]


def test_resume_of_a_run_with_rounds_but_no_checkpoint_keeps_them(copied):
    home, run_id = copied
    Store(home).update_run(run_id, status="stopped")
    (folder(home, run_id) / "checkpoint.pt").unlink()
    before = files_of(home)
    result = invoke("resume", run_id, "--home", home)
    assert result.exit_code == 2 and "no checkpoint.pt" in error_line(result)
    assert files_of(home) == before


# ---------------------------------------------------------------------------- 4, 5. locks


def test_two_branch_commands_at_once_both_keep_their_results(copied):
    """Each command read the run's rounds when it started; each stores its branch of a round into the rounds
    and the round file as they are when it stores, under the run's lock (once the last one won)."""
    from sdd_tui.core.analysis.finished_run_branches import BRANCH_KINDS, open_run, store_branch

    home, run_id = copied
    store = Store(home)
    record = store.run(run_id)
    first = open_run(record, home, torch.device("cpu"), lambda line: None)
    second = open_run(record, home, torch.device("cpu"), lambda line: None)  # both read before either stored
    weights = {"w": torch.zeros(1)}
    for index in (1, 3):
        store_branch(store, first, BRANCH_KINDS["random-prune"], index, {"test_acc": 0.25},
                     {"random_prune_model": weights})
    for index in (3,):
        store_branch(store, second, BRANCH_KINDS["reinit"], index, {"test_acc": 0.75}, {"reinit_model": weights})
    view = shown(home, run_id)
    assert branches_of(view) == {0: set(), 1: {"reinit", "random_prune"}, 2: {"reinit", "random_prune"},
                                 3: {"reinit", "random_prune"}}
    round_3 = torch.load(folder(home, run_id) / "rounds" / "round-3.pt", weights_only=True)
    assert {"reinit_model", "random_prune_model"} <= set(round_3)
    assert round_3["result"]["reinit"]["test_acc"] == 0.75 and round_3["result"]["random_prune"]["test_acc"] == 0.25


HOLDER = textwrap.dedent("""
    import sys, time
    from filelock import FileLock
    lock = FileLock(sys.argv[1])
    lock.acquire()
    print("held", flush=True)
    time.sleep(30)
""")

SWEEP_HOLDER = textwrap.dedent("""
    import sys, time
    from sdd_tui.core.history.store import Store
    from sdd_tui.core.sweeps.sweep_runner import holding_sweep
    with holding_sweep(Store(sys.argv[1]), sys.argv[2]):
        print("held", flush=True)
        time.sleep(30)
""")


def started(*args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-P", "-c", *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_tag_waits_for_the_runs_lock_and_keeps_what_was_written_meanwhile(copied, monkeypatch):
    from sdd_tui.core.history import store as store_module

    home, run_id = copied
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT_S", 0.3)
    holder = started(HOLDER, str(folder(home, run_id) / "run.lock"))
    try:
        result = invoke("runs", "tag", run_id, "late", "--home", home)
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2 and "locked by another process" in error_line(result)
    Store(home).change_run(run_id, lambda meta: {"note": "written by another command"})
    assert invoke("runs", "tag", run_id, "late", "--home", home).exit_code == 0
    view = shown(home, run_id)
    assert view["tags"] == ["keep", "late"] and view["note"] == "written by another command"


def test_a_second_resume_of_a_sweep_is_refused_naming_the_first(copied):
    home, run_id = copied
    store = Store(home)
    store.create_sweep({"id": "sw-lock-1", "name": "s", "created": 1.0, "status": "stopped",
                        "members": [{"run_id": run_id, "name": "smoke", "seed": 0}]})
    holder = started(SWEEP_HOLDER, str(home), "sw-lock-1")
    try:
        refused = invoke("sweep", "--resume", "sw-lock-1", "--home", home)
    finally:
        holder.kill()  # as kill -9: the OS drops the lock with the process
        holder.wait()
    assert refused.exit_code == 2
    assert f"sweep sw-lock-1 is being resumed by process {holder.pid}" in error_line(refused)
    after = invoke("sweep", "--resume", "sw-lock-1", "--home", home)
    assert after.exit_code == 0 and "nothing to resume" in after.output


# ---------------------------------------------------------------------------- links and oversized files


@pytest.mark.parametrize("name", ["events.jsonl", "rounds.json", "run.json", "rounds/round-1.pt", "checkpoint.pt"])
def test_a_link_in_a_run_folder_is_refused_by_every_command(copied, name):
    home, run_id = copied
    outside = home.parent / "outside"
    outside.write_bytes(b"not yours\n")
    Store(home).update_run(run_id, status="stopped")  # so that resume gets as far as the link
    path = folder(home, run_id) / name
    path.unlink()
    path.symlink_to(outside)
    for command in (["runs", "show", run_id], ["runs", "show", run_id, "--json"], ["resume", run_id],
                    ["branch", run_id, "random-prune", "--rounds", "3"],
                    ["runs", "export", run_id, "-o", home.parent / "x.csv"], ["runs", "tag", run_id, "t"]):
        result = invoke(*command, "--home", home)
        assert result.exit_code == 2, (command, result.output)
        assert "symbolic link" in error_line(result)
    assert outside.read_bytes() == b"not yours\n"  # resume once appended 1,253 lines to it
    report = invoke("doctor", "--home", home)
    assert report.exit_code == 1 and "is a symbolic link" in report.output
    assert invoke("doctor", "--repair", "--home", home).exit_code == 0
    assert outside.read_bytes() == b"not yours\n"
    assert len(shown(home, run_id)["rounds"]) == 4


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "huge"])
def test_a_run_file_that_is_a_device_a_fifo_or_over_a_gigabyte_is_refused(copied, kind):
    home, run_id = copied
    path = folder(home, run_id) / "rounds.json"
    path.unlink()
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        with open(path, "wb") as handle:
            handle.truncate(1 << 30 | 1)  # sparse: no disk used
    result = invoke("runs", "show", run_id, "--json", "--home", home)
    assert result.exit_code == 2 and run_id in error_line(result)
    assert invoke("doctor", "--repair", "--home", home).exit_code == 0
    assert len(shown(home, run_id)["rounds"]) == 4


# ---------------------------------------------------------------------------- the randomized test

FILES = ("run.json", "rounds.json", "events.jsonl", "checkpoint.pt", "rounds/round-1.pt", "rounds/round-2.pt",
         "../../store.json")
STORE_EDITS = ("drop meta", "format '2'", "future format", "status 7", "summary list", "tags text", "empty")


def damage(home: Path, run_id: str, how: str, name: str, cut: float) -> None:
    path = folder(home, run_id) / name
    if how == "store":
        try:
            json.loads((home / "store.json").read_text())
        except (OSError, ValueError):  # no store to edit (deleted, cut short, a link to a copy)
            return
        edit_store(home, {"drop meta": UNTELLABLE["no meta"], "format '2'": UNTELLABLE["format '2'"],
                          "future format": UNTELLABLE["future format"], "empty": UNTELLABLE["empty"],
                          "status 7": every_doc(status=7), "summary list": every_doc(summary=["x"]),
                          "tags text": every_doc(tags="x"),
                          }[name])
        return
    if path.is_symlink() or not path.is_file():
        return
    content = path.read_bytes()
    if how == "truncate":
        path.write_bytes(content[: int(len(content) * cut)])
    elif how == "delete":
        path.unlink()
    elif how == "corrupt":
        middle = int(len(content) * cut)
        path.write_bytes(content[:middle] + b"\x00{garbage" + content[middle + 9:])
    elif how == "symlink":
        outside = home.parent / f"outside-{path.name}"
        outside.write_bytes(content)
        path.unlink()
        path.symlink_to(outside)


def commands(run_id: str, home: Path) -> dict[str, list]:
    return {
        "runs": ["runs"], "show": ["runs", "show", run_id, "--json"], "doctor": ["doctor"],
        "repair": ["doctor", "--repair"], "branch": ["branch", run_id, "random-prune", "--rounds", "3"],
        "branch-done": ["branch", run_id, "reinit", "--rounds", "1"], "resume": ["resume", run_id],
        "export": ["runs", "export", run_id, "-o", home.parent / "export.csv"], "tag": ["runs", "tag", run_id, "t"],
    }


DAMAGE = st.one_of(
    st.tuples(st.sampled_from(["truncate", "delete", "corrupt", "symlink"]), st.sampled_from(FILES),
              st.floats(0.0, 0.95)),
    st.tuples(st.just("store"), st.sampled_from(STORE_EDITS), st.just(0.0)),
)
STEP = st.one_of(DAMAGE.map(lambda d: ("damage", d)),
                 st.sampled_from(["runs", "show", "doctor", "repair", "branch", "branch-done", "resume", "export",
                                  "tag"]).map(lambda c: ("command", c)))


KNOWN_SEQUENCES = [  # sequences that once lost a round or crashed, each tried in the quick run
    [("command", "branch"), ("damage", ("truncate", "rounds.json", 0.5)), ("command", "show"),
     ("command", "branch-done")],  # a branch trained, then the rounds cut: its result must come back
    [("damage", ("store", "drop meta", 0.0)), ("command", "runs"), ("command", "tag")],
    [("damage", ("store", "summary list", 0.0)), ("damage", ("truncate", "rounds.json", 0.5)),
     ("command", "repair"), ("command", "runs")],
    [("damage", ("symlink", "events.jsonl", 0.0)), ("command", "resume"), ("command", "export")],
]


@pytest.mark.parametrize("steps", KNOWN_SEQUENCES)
def test_the_known_sequences_of_damage_and_commands_lose_no_round(finished, tmp_path_factory, steps):
    damage_then_check_every_round(finished, tmp_path_factory, steps)


@pytest.mark.slow  # 30 drawn sequences of commands on a copied store: seconds
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=5))
def test_no_sequence_of_damage_and_commands_loses_a_round(finished, tmp_path_factory, steps):
    damage_then_check_every_round(finished, tmp_path_factory, steps)


def damage_then_check_every_round(finished, tmp_path_factory, steps) -> None:
    """`steps` (damage and commands) on a copy of the finished run: no command crashes, and every round is
    shown (after `doctor --repair` where one is needed)."""
    source, run_id = finished
    home = tmp_path_factory.mktemp("example") / "home"
    shutil.copytree(source, home, symlinks=True)
    table = commands(run_id, home)
    for kind, step in steps:
        if kind == "damage":
            damage(home, run_id, *step)
        else:
            no_crash(invoke(*table[step], "--home", home))
    expected = truth(home, run_id)
    if not all_is_well(home, run_id, expected):  # a repair is needed: after it, everything is there
        repaired = invoke("doctor", "--repair", "--home", home)
        no_crash(repaired)
        assert repaired.exit_code == 0, repaired.output
        assert_everything_shown(home, run_id, expected)
        assert invoke("runs", "--json", "--home", home).exit_code == 0
        report = invoke("doctor", "--home", home)
        assert report.exit_code == 0, report.output


def all_is_well(home: Path, run_id: str, expected: dict) -> bool:
    """`runs show --json` gives every round and branch, `runs` lists, and `doctor` finds nothing."""
    try:
        assert_everything_shown(home, run_id, expected)
    except AssertionError:
        return False
    return invoke("runs", "--json", "--home", home).exit_code == 0 and invoke("doctor", "--home", home).exit_code == 0
