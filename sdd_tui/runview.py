"""What a dashboard shows about one run, folded from its events (live, followed from a file, or replayed).

Plain data, no Textual: the same fold serves a run training in the app, a run watched from its
`events.jsonl`, and a finished run opened from History.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdd_tui.core.events import (
    EpochEnded,
    Event,
    HandOverChanged,
    Message,
    PauseChanged,
    RoundEnded,
    RoundStarted,
    RunEnded,
    RunStarted,
)  # fmt: skip
from sdd_tui.core.runs.progress import Progress

if TYPE_CHECKING:
    from sdd_tui.core.history.records import RunRecord

LOG_LINES = 500


@dataclass
class EpochPoint:
    epoch: int
    train_loss: float
    train_acc: float
    test_acc: float


@dataclass
class RunView:
    """The state of one run as its events tell it; `version` grows with every change."""

    run_id: str = ""
    progress: Progress = field(default_factory=Progress)
    config: dict[str, Any] = field(default_factory=dict)
    epochs: list[EpochPoint] = field(default_factory=list)  # the current round's main branch
    log: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    logged: int = 0  # lines ever appended to `log` (a widget writes only the new ones)
    error: str = ""
    seconds: float = 0.0  # the engine's own run time, once it ended
    version: int = 0

    @property
    def status(self) -> str:
        return self.progress.status

    @property
    def results(self) -> list[dict[str, Any]]:
        return sorted(self.progress.results, key=lambda r: r["round"])

    def apply(self, event: Event) -> None:
        continued = isinstance(event, RoundStarted) and self.progress.continues(event)
        self.progress.update(event)
        self.run_id = event.run_id
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, RoundStarted):  # a resumed round keeps the epochs up to its checkpoint
            self.epochs = [p for p in self.epochs if p.epoch <= event.start_epoch] if continued else []
        elif isinstance(event, EpochEnded) and event.branch == "main":
            self.epochs = [p for p in self.epochs if p.epoch < event.epoch]
            self.epochs.append(EpochPoint(event.epoch, event.train_loss, event.train_acc, event.test_acc))
        elif isinstance(event, RoundEnded):
            self._round_ended(event)
        elif isinstance(event, Message):
            self.add_log(event.level, event.text)
        elif isinstance(event, RunEnded):
            self._ended(event)
        elif isinstance(event, PauseChanged):
            self.add_log("warning" if event.paused else "info", "paused (between batches)" if event.paused else
                         "training again")
        elif isinstance(event, HandOverChanged):
            self._handover(event)
        self.version += 1

    def _started(self, event: RunStarted) -> None:
        self.config = event.config
        self.error = ""
        if event.resumed_from_round >= 0:
            self.progress.results = [r for r in self.progress.results if r["round"] <= event.resumed_from_round]
            self.add_log("info", f"resumed after round {event.resumed_from_round} on {event.device}")
        else:
            self.epochs = []
            self.add_log("info", f"started {event.name} on {event.device}")

    def _ended(self, event: RunEnded) -> None:
        self.error, self.seconds = event.error, event.seconds
        if self.progress.status == "handing over":
            self.add_log("info", "checkpointed here for the hand-over")
        else:
            self.add_log("error" if event.status == "failed" else "info", f"run {event.status}")

    def _handover(self, event: HandOverChanged) -> None:
        if event.state == "requested":
            self.add_log("warning", f"handing over to a background process {event.reason}".rstrip())
        elif event.state == "spawned":
            self.add_log("info", f"handed over to process {event.pid}")
        elif event.state == "failed":
            self.add_log("error", f"the hand-over failed: {event.reason}")

    def _round_ended(self, event: RoundEnded) -> None:
        result = event.result
        test = result.get("test_acc")
        text = f"round {event.round}/{event.rounds} done: sparsity {100 * result['sparsity']:.2f}%"
        if test is not None:
            text += f", test {100 * test:.1f}%"
        self.add_log("info", text)

    def add_log(self, level: str, text: str) -> None:
        self.log.append((level, text))
        self.logged += 1
        self.version += 1

    def fail(self, message: str) -> None:
        """The run failed before or outside the engine's own events (e.g. no such device)."""
        self.progress.status = "failed"
        self.error = message
        self.add_log("error", message)

    def load_record(self, record: RunRecord, status: str) -> None:
        """Fill the view from a store record, for runs whose events file is missing."""
        progress = self.progress
        progress.run_id, progress.name = record.id, record.name or ""
        progress.device, progress.status = record.device or "", status
        self.config = record.config
        progress.rounds = self.config.get("prune", {}).get("rounds", 0)
        progress.epochs = self.config.get("train", {}).get("epochs", 0)
        progress.results = list(record.rounds)
        if progress.results:
            progress.round = max(r["round"] for r in progress.results)
        self.run_id = record.id
        self.error = record.error or ""
        self.version += 1
