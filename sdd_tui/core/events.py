"""What the engine says: frozen dataclasses, serialisable to one JSON object a line.

The event stream is the only seam between the engine and its faces (headless lines, the TUI,
the store). A sink is any callable taking one event.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    run_id: str
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


@dataclass(frozen=True)
class RunStarted(Event):
    name: str
    preset: str | None
    config: dict[str, Any]
    device: str
    rounds: int
    epochs: int
    host: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    resumed_from_round: int = -1
    provenance: dict[str, Any] = field(default_factory=dict)  # core/provenance.py


@dataclass(frozen=True)
class RoundStarted(Event):
    round: int
    rounds: int
    sparsity: float
    remaining: int
    epochs: int
    start_epoch: int = 0


@dataclass(frozen=True, kw_only=True)  # keywords only: a positional call would silently mix the fields up
class EpochMetrics:
    """What one epoch measured: core.engine.training's EpochStats and the EpochEnded event carry these fields."""

    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float
    samples_per_s: float


@dataclass(frozen=True)
class EpochEnded(Event, EpochMetrics):
    round: int
    rounds: int
    epoch: int
    epochs: int
    branch: str = "main"

    @classmethod
    def from_stats(cls, stats: EpochMetrics, *, run_id: str, time: float, round: int, rounds: int, epochs: int,
                   branch: str) -> EpochEnded:
        """The event of one trained epoch: its core.engine.training.EpochStats (its `epoch` counted from 1 here) and
        where it stands."""
        return cls(run_id=run_id, time=time, round=round, rounds=rounds, epochs=epochs, branch=str(branch),
                   **{**vars(stats), "epoch": stats.epoch + 1})


@dataclass(frozen=True)
class RoundEnded(Event):
    round: int
    rounds: int
    result: dict[str, Any]


@dataclass(frozen=True)
class Message(Event):
    level: str  # info | warning | error
    text: str


@dataclass(frozen=True)
class RunEnded(Event):
    status: str  # finished | stopped | failed
    error: str = ""
    seconds: float = 0.0


# Said by whoever steers the run (the engine when it holds or goes on between batches, the app for a
# hand-over): in events.jsonl, so that `sdd-tui watch` and `sdd-tui pause` see them too.


@dataclass(frozen=True)
class PauseChanged(Event):
    """The run was paused (it holds between batches) or goes on again."""

    paused: bool


@dataclass(frozen=True)
class HandOverChanged(Event):
    """A detach: the app hands the run to a background `sdd-tui resume` process.

    state: requested (it stops at an epoch end, then the process starts), spawned (the process `pid`
    has started; its RunStarted says it took over), failed (`reason`; the run stays stopped)."""

    state: str
    pid: int = 0
    reason: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (RunStarted, RoundStarted, EpochEnded, RoundEnded, Message, RunEnded, PauseChanged, HandOverChanged)
}

Sink = Callable[[Event], None]


def event_from_dict(data: dict[str, Any]) -> Event:
    data = dict(data)
    cls = EVENT_TYPES[data.pop("type")]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def event_from_json(line: str) -> Event:
    return event_from_dict(json.loads(line))


def fanout(*sinks: Sink | None) -> Sink:
    """One sink that hands every event to each of `sinks` in order."""
    active = [s for s in sinks if s is not None]

    def sink(event: Event) -> None:
        for each in active:
            each(event)

    return sink


def append_event(path: Path, event: Event) -> None:
    """Add one event to an events.jsonl that no recorder has open (one write: whole lines interleave)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(event.to_json() + "\n")
