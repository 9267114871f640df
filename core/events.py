"""What the engine says: frozen dataclasses, serialisable to one JSON object a line.

The event stream is the only seam between the engine and its faces (headless lines, the TUI,
the store). A sink is any callable taking one event.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class EpochEnded(Event):
    round: int
    rounds: int
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float
    samples_per_s: float
    branch: str = "main"


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


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (RunStarted, RoundStarted, EpochEnded, RoundEnded, Message, RunEnded)
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
