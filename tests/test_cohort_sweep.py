"""`sdd-tui sweep --pack`: the plan it prints, a packed sweep end to end, and resuming a stopped cohort."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.events import EpochEnded
from sdd_tui.core.history.store import Store
from sdd_tui.core.runs.cohort import Cohort
from sdd_tui.core.runs.launch import build_run
from sdd_tui.core.sweeps.sweep import MemberRecorder, expand_sweep, member_config, new_sweep_record
from sdd_tui.core.sweeps.sweep_local import run_local

runner = CliRunner()


def test_dry_run_prints_the_cohorts_and_why_the_others_run_alone(home):
    result = runner.invoke(app, ["sweep", "--preset", "smoke", "--seeds", "0,1", "--grid",
                                 "retrain.compare_reinit=false,true", "--pack", "--dry-run", "--home", str(home)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "packed: 1 cohort(s) (2 members), 2 member(s) alone" in lines
    alone = [line for line in lines if line.startswith("  alone: ")]
    assert len(alone) == 2 and all("compare_reinit=true" in line and "a reinit branch" in line for line in alone)
    assert Store(home).list_sweeps() == []


def test_pack_is_for_the_local_engine(home):
    result = runner.invoke(app, ["sweep", "--preset", "smoke", "--engine", "ray", "--pack", "--home", str(home)])
    assert result.exit_code == 2
    assert "error: --pack packs members into cohorts with the local engine" in result.output


class FakeProcess:
    def __init__(self):
        self.polls = 2

    def poll(self):
        self.polls -= 1
        return 0 if self.polls <= 0 else None


def test_a_cohort_is_one_job_whose_exit_code_is_every_members():
    members = [{"run_id": f"r{i}", "name": f"m{i}", "config": {"runtime": {"device": "auto"}}} for i in range(3)]
    launched, reported = [], []
    exit_codes, interrupted = run_local([members[:2], members[2:]], [None], lambda job, device: launched.append(
        [m["run_id"] for m in job]) or FakeProcess(), lambda kind, m, detail: reported.append((kind, m["run_id"])),
        poll_seconds=0)
    assert not interrupted and launched == [["r0", "r1"], ["r2"]] and exit_codes == {"r0": 0, "r1": 0, "r2": 0}
    assert reported[:2] == [("started", "r0"), ("started", "r1")] and len(reported) == 6


@pytest.mark.slow
def test_a_packed_sweep_end_to_end(home):
    result = runner.invoke(app, ["sweep", "--preset", "smoke", "--seeds", "0,1", "--set", "prune.rounds=1", "--pack",
                                 "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "packed: 1 cohort(s) (2 members), 0 member(s) alone" in result.output
    store = Store(home)
    (sweep,) = store.list_sweeps()
    assert sweep["status"] == "finished" and sweep["pack"] is True
    ids = [m["run_id"] for m in sweep["members"]]
    runs = {r["id"]: r for r in store.list_runs()}
    assert all(runs[i]["status"] == "finished" and len(runs[i]["rounds"]) == 2 and runs[i]["sweep"] == sweep["id"]
               for i in ids)
    assert runs[ids[0]]["pid"] == runs[ids[1]]["pid"]  # one process trained both
    cohort_log = store.paths(ids[0]).cohort_log.read_text()
    assert "round 1 from iteration 0: 2 members packed" in cohort_log
    assert all(f"run {i}" in store.paths(i).output_log.read_text() for i in ids)
    shown = runner.invoke(app, ["runs", "show", ids[1], "--json", "--home", str(home)])
    assert shown.exit_code == 0 and len(json.loads(shown.output)["rounds"]) == 2


class StopAt:
    def __init__(self, round_index: int, epoch: int):
        self.round, self.epoch, self.control = round_index, epoch, None

    def __call__(self, event):
        if isinstance(event, EpochEnded) and (event.round, event.epoch) == (self.round, self.epoch):
            self.control.stop.set()


@pytest.mark.slow
def test_sweep_resume_goes_on_with_a_stopped_cohort_from_its_checkpoints(home):
    store = Store(home)
    overrides = ["prune.rounds=2", "train.epochs=3"]
    members = expand_sweep("smoke", None, overrides, [0, 1], {})
    sweep = new_sweep_record(members, "smoke", None, overrides, [0, 1], {}, "local")
    store.create_sweep({**sweep, "pack": True, "status": "stopped"})
    cohort, stops = Cohort(), [StopAt(0, 2), StopAt(1, 1)]
    handles = [build_run(member_config(m), home, run_id=m["run_id"], recorder=MemberRecorder(Store(home), sweep["id"]),
                         sinks=[stop], branch_trainer=cohort.branch_trainer) for m, stop in zip(members, stops)]
    for handle, stop in zip(handles, stops):
        stop.control = handle.control
    assert set(cohort.run(handles).values()) == {"stopped"}

    resumed = runner.invoke(app, ["sweep", "--resume", sweep["id"], "--home", str(home)])
    assert resumed.exit_code == 0, resumed.output
    assert "packed: 1 cohort(s) (2 members)" in resumed.output
    for member, where in zip(members, ["resuming round 0 at epoch 3", "resuming round 1 at epoch 2"]):
        events = [json.loads(line) for line in store.events_path(member["run_id"]).read_text().splitlines()]
        assert [e["resumed_from_round"] for e in events if e["type"] == "RunStarted"] == [-1, 0]
        assert any(where in e.get("text", "") for e in events)
        assert store.get_run(member["run_id"])["status"] == "finished"
    # the one behind trains alone until both stand at the same point, then they pack again
    log = store.paths(members[0]["run_id"]).cohort_log.read_text()
    assert f"round 0 from iteration 8: {members[0]['run_id']} alone" in log
    assert "round 2 from iteration 0: 2 members packed" in log


def test_a_member_that_fails_before_it_starts_says_why_in_its_log_and_the_others_go_on(home, tmp_path):
    from sdd_tui.core.config import resolve_config
    from sdd_tui.headless import run_cohort_headless

    store = Store(home)
    good = resolve_config("smoke", overrides=["prune.rounds=1"])
    bad = resolve_config("smoke", overrides=["data.name='mnist'", f"data.data_dir='{tmp_path / 'none'}'"])
    statuses = run_cohort_headless([(good, "good-run", False), (bad, "bad-run", False)], store, "smoke",
                                   lambda: MemberRecorder(Store(home), "sw-x"))
    assert statuses == {"good-run": "finished", "bad-run": "failed"}
    last = store.paths("bad-run").output_log.read_text().splitlines()[-1]
    assert last.startswith("error: mnist not found under")
    assert store.get_run("good-run")["status"] == "finished"
