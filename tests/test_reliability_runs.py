"""Runs survive kills and signals: a resumed run gives the same rounds as an uninterrupted one (CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.config import resolve_config
from sdd_tui.core.engine.training import Control
from sdd_tui.core.events import EpochEnded, Message
from sdd_tui.core.history.store import Store, display_status
from sdd_tui.core.paths import CHECKPOINT
from sdd_tui.core.runs.launch import build_run

# ~0.1 s an epoch on one thread: long enough to kill mid-round, short enough for a test
LONG = ["train.epochs=4", "prune.rounds=3", "data.synthetic_train=16384", "runtime.threads=1"]  # epochs long enough to signal mid-round


def comparable(rounds: list[dict]) -> list[dict]:
    """Round results without wall-clock seconds (also inside the ticket/reinit summaries)."""

    def strip(result: dict) -> dict:
        return {k: strip(v) if isinstance(v, dict) else v for k, v in result.items() if k != "seconds"}

    return [strip(r) for r in sorted(rounds, key=lambda r: r["round"])]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny models run fastest on one thread


@pytest.fixture(scope="module")
def long_baseline(run_experiment, tmp_path_factory) -> list[dict]:
    """The LONG run, uninterrupted (checkpoint settings do not change results)."""
    home = tmp_path_factory.mktemp("baseline")
    run_id, status, _ = run_experiment(resolve_config("smoke", overrides=LONG), home)
    assert status == "finished"
    return comparable(Store(home).get_run(run_id)["rounds"])


def cli(*args: str, **popen) -> subprocess.Popen:
    # -P: the installed package, never a `core/` or `sdd_tui/` folder in the current directory
    return subprocess.Popen([sys.executable, "-P", "-m", "sdd_tui", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def start_run(home: Path, overrides: list[str], **popen) -> subprocess.Popen:
    sets = [arg for o in overrides for arg in ("--set", o)]
    return cli("--preset", "smoke", "--home", str(home), *sets, **popen)


def read_until(proc: subprocess.Popen, text: str) -> list[str]:
    """Lines the run printed up to and including the first one containing `text`."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return lines
    proc.wait()
    pytest.fail(f"the run ended (rc {proc.returncode}) before printing {text!r}:\n{''.join(lines[-20:])}")


def finish(proc: subprocess.Popen) -> str:
    output = proc.stdout.read()
    proc.wait(timeout=120)
    return output


def only_run(home: Path) -> dict:
    (record,) = Store(home).list_runs()
    return record


def resume(home: Path, run_id: str) -> tuple[int, str]:
    """`sdd-tui resume` in this process (the run itself was a separate process)."""
    result = CliRunner().invoke(app, ["resume", run_id, "--home", str(home)])
    return result.exit_code, result.output


@pytest.mark.slow
def test_sigkill_mid_round_then_resume_gives_the_uninterrupted_rounds(tmp_path, long_baseline):
    proc = start_run(tmp_path / "home", [*LONG, "runtime.checkpoint_every=1"])
    read_until(proc, "round 1/3 epoch 2/4")  # epoch 1 of round 1 is checkpointed before epoch 2 starts
    proc.kill()
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    record = only_run(tmp_path / "home")
    assert display_status(record) == "interrupted"
    assert [r["round"] for r in record["rounds"]] == [0]

    code, output = resume(tmp_path / "home", record["id"])

    assert code == 0, output
    assert "resuming round 1 at epoch" in output  # mid-round, not from the round's start
    resumed = only_run(tmp_path / "home")
    assert resumed["status"] == "finished"
    assert comparable(resumed["rounds"]) == long_baseline


@pytest.mark.slow
def test_sigterm_stops_checkpoints_and_resumes_exactly(tmp_path, long_baseline):
    proc = start_run(tmp_path / "home", [*LONG, "runtime.checkpoint_every=0", "runtime.checkpoint_minutes=0"])
    read_until(proc, "round 1/3 epoch 2/4")
    proc.send_signal(signal.SIGTERM)
    output = finish(proc)

    assert proc.returncode == 130, output
    record = only_run(tmp_path / "home")
    assert record["status"] == "stopped"
    assert [r["round"] for r in record["rounds"]] == [0]
    checkpoint = torch.load(tmp_path / "home" / "runs" / record["id"] / CHECKPOINT, weights_only=False)
    assert checkpoint["round"] == 0  # only the stop wrote mid-round: rounds-only checkpoints were asked for
    assert checkpoint["partial"]["round"] == 1 and checkpoint["partial"]["next_epoch"] >= 2
    code, output = resume(tmp_path / "home", record["id"])
    assert code == 0, output
    assert comparable(only_run(tmp_path / "home")["rounds"]) == long_baseline


def signal_self_at(monkeypatch, signum: int, round_index: int, epoch: int) -> None:
    """Make the headless reporter send `signum` to this process when that epoch ends."""
    from sdd_tui import headless

    original = headless.HeadlessReporter.__call__

    def call(self, event):
        original(self, event)
        if isinstance(event, EpochEnded) and (event.round, event.epoch) == (round_index, epoch):
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(headless.HeadlessReporter, "__call__", call)


def run_cli(home: Path, *overrides: str):
    sets = [arg for o in ("runtime.checkpoint_every=0", "runtime.checkpoint_minutes=0", *overrides)
            for arg in ("--set", o)]
    return CliRunner().invoke(app, ["--preset", "smoke", "--home", str(home), *sets])


def test_sighup_stops_cleanly_and_keeps_finished_rounds(tmp_path, monkeypatch):
    signal_self_at(monkeypatch, signal.SIGHUP, round_index=1, epoch=1)
    result = run_cli(tmp_path, "prune.rounds=2")
    assert result.exit_code == 130, result.output
    assert "stopping after this batch (SIGHUP)" in result.output
    record = only_run(tmp_path)
    assert record["status"] == "stopped"
    assert [r["round"] for r in record["rounds"]] == [0]
    checkpoint = torch.load(tmp_path / "runs" / record["id"] / CHECKPOINT, weights_only=False)
    assert (checkpoint["partial"]["round"], checkpoint["partial"]["next_epoch"]) == (1, 1)


def test_sighup_is_ignored_under_nohup(tmp_path, monkeypatch):
    signal_self_at(monkeypatch, signal.SIGHUP, round_index=0, epoch=1)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what `nohup` does before starting the run
    try:
        result = run_cli(tmp_path, "prune.rounds=1")
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert result.exit_code == 0, result.output
    assert only_run(tmp_path)["status"] == "finished"


# ---------------------------------------------------------------------------- in-process resume, every branch


def run_until_stop(config, home: Path, stop_at: tuple[int, int, str], run_id=None, resume=False):
    """Run, setting the stop flag after the epoch `stop_at` = (round, epoch, branch) ends."""
    control, events = Control(), []

    def sink(event):
        events.append(event)
        if isinstance(event, EpochEnded) and (event.round, event.epoch, event.branch) == stop_at:
            control.stop.set()

    run = build_run(config, home, run_id=run_id, control=control, resume=resume, sinks=[sink])
    return run.run_id, run.run(), events


@pytest.mark.parametrize(
    ("overrides", "stop_at"),
    [
        (["retrain.compare_reinit=true"], (2, 1, "reinit")),
        (["retrain.mode=lr_rewind", "retrain.rewind_iteration=5"], (1, 2, "main")),
        (["retrain.mode=scratch", "train.optimizer=adam"], (0, 1, "main")),
        (["data.shape=[1,8,8]", "train.augment=true", "retrain.mode=finetune"], (2, 3, "main")),
        (["prune.schedule=oneshot", "retrain.mode=finetune"], (2, 1, "main")),  # the dense weights come back
    ],
    ids=["reinit-branch", "lr-rewind", "scratch-adam-dense", "augment-finetune", "oneshot-finetune"],
)
def test_stop_anywhere_then_resume_matches_uninterrupted(tmp_path, overrides, stop_at):
    config = resolve_config("smoke", overrides=["train.epochs=4", "prune.rounds=2", "runtime.checkpoint_every=0",
                                                 "runtime.threads=1",
                                                 "runtime.checkpoint_minutes=0", *overrides])
    _, _, _ = run_until_stop(config, tmp_path / "a", stop_at=(-1, -1, ""))
    baseline = comparable(only_run(tmp_path / "a")["rounds"])

    run_id, status, _ = run_until_stop(config, tmp_path / "b", stop_at=stop_at)
    assert status == "stopped"
    _, status, events = run_until_stop(config, tmp_path / "b", stop_at=(-1, -1, ""), run_id=run_id, resume=True)

    assert status == "finished"
    branch = "reinit branch" if stop_at[2] == "reinit" else "main branch"
    assert f"resuming round {stop_at[0]} at epoch {stop_at[1] + 1} ({branch})" in [
        e.text for e in events if isinstance(e, Message)]
    assert comparable(only_run(tmp_path / "b")["rounds"]) == baseline


def test_resume_without_a_checkpoint_starts_over(run_experiment, tmp_path, smoke_config):
    config = smoke_config("prune.rounds=1")
    run_id, status, events = run_experiment(config, tmp_path, run_id="never-checkpointed", resume=True)
    assert status == "finished"
    assert any("no checkpoint yet; starting it over" in e.text for e in events if isinstance(e, Message))
    assert [r["round"] for r in Store(tmp_path).get_run(run_id)["rounds"]] == [0, 1]


def test_a_line_cut_short_by_a_kill_does_not_swallow_the_next_event(run_experiment, tmp_path, smoke_config):
    from sdd_tui.core.events import event_from_json

    config = smoke_config("prune.rounds=1", "train.epochs=1")
    run_id, _, _ = run_experiment(config, tmp_path)
    events = Store(tmp_path).events_path(run_id)
    with open(events, "a", encoding="utf-8") as handle:
        handle.write('{"type":"EpochEnded","run_id":')  # what SIGKILL mid-write leaves
    Store(tmp_path).update_run(run_id, status="stopped")
    run_experiment(config, tmp_path, run_id=run_id, resume=True)
    lines = events.read_text(encoding="utf-8").splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(event_from_json(line))
        except ValueError:
            parsed.append(None)
    assert parsed.count(None) == 1  # only the cut line
    assert [type(e).__name__ for e in parsed if e is not None].count("RunStarted") == 2


def test_checkpoint_clock_counts_epochs_and_minutes(monkeypatch):
    import sdd_tui.core.engine.checkpoint as checkpoint

    now = [1000.0]
    monkeypatch.setattr(checkpoint.time, "monotonic", lambda: now[0])
    by_epochs = checkpoint.CheckpointClock(every_epochs=2, every_minutes=0)
    assert [by_epochs.epoch_ended() for _ in range(2)] == [False, True]
    by_epochs.mark()
    assert by_epochs.epoch_ended() is False

    by_time = checkpoint.CheckpointClock(every_epochs=0, every_minutes=5)
    now[0] += 4 * 60
    assert by_time.epoch_ended() is False
    now[0] += 60
    assert by_time.epoch_ended() is True
    by_time.mark()
    assert by_time.epoch_ended() is False
    assert checkpoint.CheckpointClock(0, 0).epoch_ended() is False  # rounds only
