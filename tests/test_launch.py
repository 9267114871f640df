"""build_run: the one way the CLI, the app, sweeps and tests wire a run."""

from __future__ import annotations

import pytest

from sdd_tui.core.engine.training import Control
from sdd_tui.core.events import RunEnded, RunStarted
from sdd_tui.core.history.store import Store
from sdd_tui.core.runs.launch import build_run


class ListRecorder:
    def __init__(self, seen: list):
        self.seen, self.closed = seen, 0

    def __call__(self, event) -> None:
        self.seen.append(("recorder", type(event).__name__))

    def close(self) -> None:
        self.closed += 1


def test_the_recorder_sees_each_event_before_the_sinks_and_is_closed_at_the_end(home, smoke_config):
    seen = []
    recorder = ListRecorder(seen)
    run = build_run(smoke_config("prune.rounds=1", "train.epochs=1"), home, recorder=recorder,
                    sinks=[lambda e: seen.append(("first", type(e).__name__)),
                           lambda e: seen.append(("second", type(e).__name__))])
    assert run.recorder is recorder and run.experiment.control is run.control

    assert run.run() == "finished"

    assert recorder.closed == 1
    names = [name for who, name in seen if who == "recorder"]
    assert names[0] == "RunStarted" and names[-1] == "RunEnded"
    assert seen == [(who, name) for name in names for who in ("recorder", "first", "second")]


def test_the_default_recorder_writes_the_store_and_a_given_control_stops_the_run(home, smoke_config):
    control = Control()
    control.stop.set()
    ended = []
    run = build_run(smoke_config(), home, preset="smoke", control=control,
                    sinks=[lambda e: ended.append(e) if isinstance(e, (RunStarted, RunEnded)) else None])

    assert run.run() == "stopped"

    assert run.control is control
    record = Store(home).get_run(run.run_id)
    assert (record["status"], record["preset"]) == ("stopped", "smoke")
    assert [type(e).__name__ for e in ended] == ["RunStarted", "RunEnded"]


def test_the_recorder_is_closed_when_the_run_fails(home, smoke_config, monkeypatch):
    import sdd_tui.core.engine.experiment
    from sdd_tui import core

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(core.engine.experiment.Experiment, "_loop", broken)
    recorder = ListRecorder([])
    run = build_run(smoke_config(), home, recorder=recorder)
    with pytest.raises(RuntimeError, match="a bug"):
        run.run()
    assert recorder.closed == 1
