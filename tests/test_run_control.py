"""Steering a run in another process: `sdd-tui pause|unpause|stop ID` through the run's control file.

A headless run and a detached one (`sdd-tui resume ID` in its own session, as the app's detach starts it)
each pause (no epoch ends while paused), go on, and stop; the command waits for the run's own event.
A member of a packed cohort refuses a pause (it would hold the others) and stops alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from typer.testing import CliRunner

from sdd_tui.cli import app as cli_app
from sdd_tui.core.config import resolve_config
from sdd_tui.core.engine.run_control import REFUSED, RequestReader, write_request
from sdd_tui.core.engine.training import Control
from sdd_tui.core.errors import StopRequested
from sdd_tui.core.events import EpochEnded, Message, PauseChanged, RunEnded, event_from_json
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import RunPaths, new_run_id
from sdd_tui.core.runs.cohort import Cohort
from sdd_tui.core.runs.launch import build_run
from sdd_tui.core.runs.spawn import sdd_tui_command, spawn

LIMIT_S = 90.0  # a bound against hanging, not a speed claim
ENDLESS = ["--preset", "smoke", "--set", "train.epochs=10000"]  # never finishes by itself: the test stops it


def events(home, run_id) -> list:
    path = RunPaths(home, run_id).events
    lines = path.read_text().splitlines() if path.exists() else []
    return [event_from_json(line) for line in lines if line.endswith("}")]  # not a line being written


def epochs(home, run_id) -> int:
    return sum(isinstance(e, EpochEnded) for e in events(home, run_id))


def wait_until(condition, what: str, limit: float = LIMIT_S) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def the_run(home) -> str:
    wait_until(lambda: Store(home).list_runs(), "the run's record")
    return Store(home).list_runs()[0]["id"]


def cli(*args: str):
    return CliRunner().invoke(cli_app, [*args], catch_exceptions=False)


def steer_through_pause_unpause_stop(home, run_id: str, process: subprocess.Popen) -> None:
    wait_until(lambda: epochs(home, run_id) >= 2, "training")
    paused = cli("pause", run_id, "--home", str(home))
    assert paused.exit_code == 0, paused.output
    assert f"run {run_id} paused in round 0" in paused.output
    held = epochs(home, run_id)
    time.sleep(1.0)
    assert epochs(home, run_id) == held  # no epoch ends while paused
    assert cli("pause", run_id, "--home", str(home)).output.startswith(f"run {run_id} is already paused")
    going = cli("unpause", run_id, "--home", str(home))
    assert going.exit_code == 0 and "training again" in going.output, going.output
    wait_until(lambda: epochs(home, run_id) > held, "training after the pause")
    stopped = cli("stop", run_id, "--home", str(home))
    assert stopped.exit_code == 0 and f"run {run_id} stopped in round 0" in stopped.output, stopped.output
    assert process.wait(LIMIT_S) == 130  # the headless exit status of a stopped run
    assert Store(home).get_run(run_id)["status"] == "stopped"
    kinds = [(type(e).__name__, getattr(e, "paused", getattr(e, "status", None))) for e in events(home, run_id)
             if isinstance(e, (PauseChanged, RunEnded))]
    assert kinds[-3:] == [("PauseChanged", True), ("PauseChanged", False), ("RunEnded", "stopped")]
    again = cli("stop", run_id, "--home", str(home))
    assert again.exit_code == 2 and again.output.count("\n") == 1
    assert f"error: run {run_id} is stopped, not running; `sdd-tui resume {run_id}`" in again.output


@pytest.mark.slow
def test_pause_unpause_and_stop_a_headless_run_in_another_process(home, tmp_path):
    process = subprocess.Popen(sdd_tui_command(*ENDLESS, "--home", str(home)), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        steer_through_pause_unpause_stop(home, the_run(home), process)
    finally:
        process.kill()


@pytest.mark.slow
def test_pause_unpause_and_stop_a_detached_run(home, smoke_config):
    control = Control()
    stop_early = lambda event: isinstance(event, EpochEnded) and event.epoch == 2 and control.stop.set()  # noqa: E731
    stopped = build_run(smoke_config("train.epochs=10000"), home, control=control, sinks=[stop_early])
    assert stopped.run() == "stopped"
    run_id = stopped.run_id
    # a detached run: `sdd-tui resume ID` in its own session with its output in a log, as the app starts it
    process = spawn(sdd_tui_command("resume", run_id, "--home", str(home)), RunPaths(home, run_id).detached_log)
    try:
        wait_until(lambda: Store(home).get_run(run_id).get("pid") == process.pid, "the background process")
        steer_through_pause_unpause_stop(home, run_id, process)
    finally:
        process.kill()


def test_an_unknown_finished_or_interrupted_run_is_one_line_and_exit_2(home, run_experiment, smoke_config):
    finished, _, _ = run_experiment(smoke_config("prune.rounds=1", "train.epochs=1"), home)
    Store(home).create_run({"id": "gone-run", "name": "x", "status": "running", "pid": 2**22 + 17, "config": {}})
    for run_id, text in (("nosuch", "nosuch"), (finished, "is finished; there is nothing to pause"),
                         ("gone-run", "is interrupted (its process is gone); `sdd-tui resume gone-run`")):
        result = cli("pause", run_id, "--home", str(home))
        assert result.exit_code == 2 and result.output.startswith("error: ") and text in result.output, result.output
        assert result.output.count("\n") == 1


def test_a_request_is_read_once_and_one_older_than_the_process_is_stale(tmp_path):
    path = RunPaths(tmp_path, "run-1").control
    write_request(tmp_path, "run-1", "stop")
    assert RequestReader(path, since=time.time() + 1)() is None  # meant for an earlier process of the run
    reader = RequestReader(path, since=0)
    assert reader() == "stop" and reader() is None
    write_request(tmp_path, "run-1", "stop")  # the same action asked again is a new request
    assert reader() == "stop"
    path.write_text("{not json")
    os.utime(path, ns=(1, 1))
    assert reader() is None


def test_the_engine_says_when_it_holds_and_goes_on_once_each(monkeypatch):
    monkeypatch.setattr("sdd_tui.core.engine.training.REQUEST_POLL_S", 0.0)  # every check reads a request
    said, actions = [], ["pause", None, None, "unpause", None, "stop"]
    control = Control()
    control.listen(lambda: actions.pop(0) if actions else None, said.append, said.append)
    with pytest.raises(StopRequested):
        for _ in range(10):
            control.check()
    assert said == [True, False]
    control = Control()
    control.pause_refusal = "packed"
    control.listen(lambda: "pause", said.append, said.append)
    control.check()
    assert not control.paused.is_set() and said[-1] == "packed"


@pytest.mark.slow
def test_a_cohort_member_refuses_a_pause_and_stops_alone(home):
    configs = [resolve_config("digits-noise40", overrides=["prune.rounds=1", "train.epochs=10000",
                                                             f"runtime.seed={seed}"]) for seed in (0, 1)]
    cohort = Cohort()
    kept, ids, asked = [[], []], [new_run_id() + "-a", new_run_id() + "-b"], []

    def steer(event) -> None:  # member a's sink: asks as `sdd-tui pause` would, then stops it when refused
        kept[0].append(event)
        if isinstance(event, EpochEnded) and event.epoch == 2:
            write_request(home, ids[0], "pause")
        if isinstance(event, Message) and event.text.startswith(REFUSED):
            write_request(home, ids[0], "stop")
            asked.append(time.time())

    def end_second(event) -> None:
        kept[1].append(event)
        if isinstance(event, EpochEnded) and asked and event.time > asked[0] + 1.5:
            handles[1].control.stop.set()  # the test ends the other member once it has trained on alone

    handles = [build_run(config, home, sinks=[sink], branch_trainer=cohort.branch_trainer, run_id=run_id)
               for config, sink, run_id in zip(configs, (steer, end_second), ids)]
    statuses = cohort.run(handles)
    assert statuses == {ids[0]: "stopped", ids[1]: "stopped"}
    refusal = next(e for e in kept[0] if isinstance(e, Message) and e.text.startswith(REFUSED))
    assert "cohort" in refusal.text and f"sdd-tui stop {ids[0]}" in refusal.text
    assert not any(isinstance(e, PauseChanged) for e in kept[0] + kept[1])  # neither ever held
    last_epoch = [max(e.time for e in k if isinstance(e, EpochEnded)) for k in kept]
    assert last_epoch[0] < asked[0] + 1.0 < last_epoch[1]  # a stopped at its next batches, b trained on
    assert json.loads(RunPaths(home, ids[0]).control.read_text())["action"] == "stop"


@pytest.mark.slow
def test_a_member_of_a_packed_sweep_refuses_a_pause_and_stops_alone_through_the_cli(home, tmp_path):
    sweep = subprocess.Popen(sdd_tui_command("sweep", *ENDLESS, "--seeds", "0,1", "--pack", "--home", str(home)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_until(lambda: len(Store(home).list_runs()) == 2 and all(epochs(home, r["id"]) >= 2
                                                                     for r in Store(home).list_runs()), "training")
        first, second = (r["id"] for r in Store(home).list_runs())
        refused = cli("pause", first, "--home", str(home))
        assert refused.exit_code == 2 and refused.output.count("\n") == 1
        assert f"error: run {first} cannot be paused alone: " in refused.output and "cohort" in refused.output
        assert cli("stop", first, "--home", str(home)).exit_code == 0
        trained = epochs(home, second)
        wait_until(lambda: epochs(home, second) > trained, "the other member to go on")
        assert Store(home).get_run(second)["status"] == "running"
        assert cli("stop", second, "--home", str(home)).exit_code == 0
        assert sweep.wait(LIMIT_S) != 0  # a stopped sweep
    finally:
        sweep.kill()
