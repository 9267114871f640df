"""The Ray engine on a local Ray instance: members stored and grouped, a killed member resumed, Ctrl-C."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.history.records import SweepRecord
from sdd_tui.core.history.store import Store
from sdd_tui.core.sweeps.sweep import expand_sweep, new_sweep_record, sweep_curves

ray = pytest.importorskip("ray")  # the `ray` extra; CI installs it with `.[test]`
from sdd_tui.core.sweeps.sweep_ray import loopback_only, ray_member_device, run_ray  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def local_ray():
    with loopback_only():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
        yield ray
        ray.shutdown()


def _sweep(home, overrides: list[str], seeds: list[int]) -> tuple[Store, dict]:
    store = Store(home)
    members = expand_sweep("smoke", None, overrides, seeds, {})
    sweep = new_sweep_record(members, "smoke", None, overrides, seeds, {}, "ray")
    store.create_sweep(sweep)
    return store, sweep


def _run_started(store: Store, run_id: str) -> list[int]:
    lines = store.events_path(run_id).read_text().splitlines()
    return [e["resumed_from_round"] for e in map(json.loads, lines) if e["type"] == "RunStarted"]


def test_a_member_uses_its_one_gpu_or_stays_on_cpu():
    assert ray_member_device("auto", has_gpu=True) == "cuda"
    assert ray_member_device("cuda:3", has_gpu=True) == "cuda"
    assert ray_member_device("cpu", has_gpu=True) == "cpu"
    assert ray_member_device("auto", has_gpu=False) == "auto"


@pytest.mark.slow
def test_ray_sweep_records_members_and_resumes_a_killed_one(local_ray, home):
    store, sweep = _sweep(home, ["prune.rounds=3"], [0, 1])
    killed, healthy = sweep["members"][1]["run_id"], sweep["members"][0]["run_id"]
    outcomes, interrupted = run_ray(store, SweepRecord.parse(sweep), sweep["members"], worker_home=home, poll_seconds=0.1,
                                    faults={killed: {"crash_round": 2}})  # its worker exits when round 2 starts
    assert not interrupted
    assert outcomes == {killed: {"status": "finished", "error": ""}, healthy: {"status": "finished", "error": ""}}
    runs = {r["id"]: r for r in store.list_runs()}
    assert {runs[i]["sweep"] for i in (killed, healthy)} == {sweep["id"]}
    assert [r["round"] for r in runs[killed]["rounds"]] == [0, 1, 2, 3]
    assert runs[killed]["status"] == "finished"
    assert _run_started(store, killed) == [-1, 1]  # retried by Ray, resumed after round 1's checkpoint
    assert _run_started(store, healthy) == [-1]
    assert [r["sparsity"] for r in runs[killed]["rounds"]] == [r["sparsity"] for r in runs[healthy]["rounds"]]
    (curve,) = sweep_curves(store, sweep["id"])
    assert [row["seeds"] for row in curve["rounds"]] == [2, 2, 2, 2]
    shown = runner.invoke(app, ["sweeps", "show", sweep["id"], "--home", str(home)])
    assert shown.exit_code == 0 and killed in shown.output and "mean ± std over seeds 0,1" in shown.output


@pytest.mark.slow
def test_ctrl_c_stops_a_ray_sweep_and_resume_finishes_it(local_ray, home):
    store, sweep = _sweep(home, ["prune.rounds=3"], [0, 1, 2])
    hold = {m["run_id"]: {"hold_round": 1} for m in sweep["members"]}  # a member pauses in round 1 until stopped
    first_round_of = []

    def press_ctrl_c(member, event):
        if type(event).__name__ == "RoundEnded" and not first_round_of:
            first_round_of.append(member["run_id"])
            raise KeyboardInterrupt

    # two CPUs per member: one member runs, two wait for it
    outcomes, interrupted = run_ray(store, SweepRecord.parse(sweep), sweep["members"], worker_home=home, cpus_per_member=2,
                                    poll_seconds=0.1, report=press_ctrl_c, faults=hold)
    assert interrupted
    assert {o["status"] for o in outcomes.values()} == {"stopped"} and len(outcomes) == 3
    (record,) = store.list_runs()  # the waiting members never started
    assert record["id"] == first_round_of[0] and record["status"] == "stopped"
    assert [r["round"] for r in record["rounds"]] == [0]
    assert (store.run_dir(record["id"]) / "checkpoint.pt").exists()

    resumed = runner.invoke(app, ["sweep", "--resume", sweep["id"], "--engine", "ray", "--cpus-per-member", "0.5",
                                  "--home", str(home)])
    assert resumed.exit_code == 0, resumed.output
    assert "3 of 3 member(s) to run" in resumed.output
    runs = {r["id"]: r for r in store.list_runs()}
    assert {r["status"] for r in runs.values()} == {"finished"} and len(runs) == 3
    assert all([x["round"] for x in r["rounds"]] == [0, 1, 2, 3] for r in runs.values())
    assert _run_started(store, first_round_of[0]) == [-1, 0]  # went on from its round-0 checkpoint
    assert store.get_sweep(sweep["id"])["status"] == "finished"
