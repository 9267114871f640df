"""The hand-over of a detached run (its states) and the one function that starts background processes."""

from __future__ import annotations

import sys

from sdd_tui.core.runs.spawn import sdd_tui_command, spawn
from sdd_tui.handover import HandOver, HandOverState

LIMIT_S = 60


def python(code: str):
    return lambda home, run_id: [sys.executable, "-c", code]


def test_a_hand_over_waits_for_an_epoch_end_before_it_stops_the_engine(tmp_path):
    stops = []
    handover = HandOver("run", lambda: stops.append(True))
    handover.start(resumable=False)
    assert handover.state is HandOverState.REQUESTED and not stops
    handover.epoch_ended()
    assert handover.state is HandOverState.STOPPING and stops == [True]
    handover.epoch_ended()  # later epoch ends change nothing
    assert handover.state is HandOverState.STOPPING and stops == [True]


def test_a_resumable_run_stops_at_once_and_a_clean_exit_means_adopted(tmp_path):
    stops = []
    handover = HandOver("run", lambda: stops.append(True))
    handover.start(resumable=True)
    assert handover.state is HandOverState.STOPPING and stops == [True]
    process = handover.spawn(tmp_path, tmp_path / "detached.log", python("pass"))
    assert handover.state is HandOverState.SPAWNED and handover.in_flight
    process.wait(LIMIT_S)
    assert handover.newly_exited() == 0 and handover.state is HandOverState.ADOPTED
    assert handover.newly_exited() is None  # an exit is reported once


def test_a_process_that_fails_fails_the_hand_over_with_its_code(tmp_path):
    handover = HandOver("run", lambda: None)
    handover.start(resumable=True)
    handover.spawn(tmp_path, tmp_path / "detached.log", python("import sys; print('no checkpoint'); sys.exit(3)"))
    handover.process.wait(LIMIT_S)
    assert handover.newly_exited() == 3
    assert handover.state is HandOverState.FAILED and "3" in handover.reason and not handover.in_flight
    assert "no checkpoint" in (tmp_path / "detached.log").read_text()


def test_spawn_appends_output_and_keeps_set_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    log = tmp_path / "sub" / "out.log"
    log.parent.mkdir()
    log.write_text("earlier\n")
    code = "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['EXTRA'])"
    spawn([sys.executable, "-c", code], log, env_defaults={"OMP_NUM_THREADS": "1", "EXTRA": "x"}).wait(LIMIT_S)
    assert log.read_text().splitlines() == ["earlier", "7 x"]


def test_a_spawned_sdd_tui_is_this_package_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    shadow = tmp_path / "sdd_tui"
    shadow.mkdir()
    for name in ("__init__.py", "__main__.py"):
        (shadow / name).write_text("raise SystemExit('the folder in the working directory was imported')\n")
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "out.log"
    assert spawn(sdd_tui_command("--version"), log).wait(LIMIT_S) == 0, log.read_text()
    assert log.read_text().startswith("sdd-tui ")