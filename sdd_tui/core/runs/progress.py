"""Progress and ETA from the event stream: shared by the headless reporter and the TUI.

Everything here follows from the events alone (their `time` fields included), so the headless
progress line and the dashboard give the same figures for the same events.

- Rounds: round 0 is the dense one, then `rounds` pruning rounds ("round r/R").
- Work is counted in epochs trained, all branches: a pruned round trains `epochs - start_epoch`
  epochs of the main branch (rewinding to iteration t skips the first ones) plus, with a reinit
  branch (`retrain.mode = reinit` or `retrain.compare_reinit`), `epochs` more.
- The ETA is (epochs left) x (seconds per epoch), smoothed: the mean over the last ROUNDS_FOR_ETA
  whole rounds of their wall time (RoundStarted to the next RoundStarted, so pruning, evaluation
  and checkpoints count) per epoch trained; before a round has ended, the mean of the last
  EPOCHS_FOR_ETA epochs' own seconds. Masked training costs the same per epoch at every sparsity
  (the weights stay dense tensors), so the remaining weights' share does not scale it.
- A run resumed in the same stream (a detach) never moves backwards: the round it resumes keeps
  where it started, and its epochs go on from the checkpoint, which is the last epoch end shown.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from ..events import (
    EpochEnded,
    Event,
    HandOverChanged,
    PauseChanged,
    RoundEnded,
    RoundStarted,
    RunEnded,
    RunStarted,
)  # fmt: skip
from ..format import format_seconds
from ..ranges import trained_rounds

ROUNDS_FOR_ETA = 3
EPOCHS_FOR_ETA = 20


@dataclass
class Progress:
    """Folds events into 'where is the run and how long is left'."""

    run_id: str = ""
    name: str = ""
    device: str = ""
    rounds: int = 0
    epochs: int = 0
    round: int = 0
    epoch: int = 0  # the main branch's last epoch end in this round
    branch: str = "main"  # the branch training now
    branch_epoch: int = 0  # the reinit (or ticket) branch's last epoch end, once it trains
    round_start_epoch: int = 0  # where this round's main branch started (rewinding to iteration t skips epochs)
    samples_per_s: float = 0.0
    status: str = "starting"
    handing_over: bool = False  # a detach is under way (the app hands the run to a background process)
    handover_pid: int = 0
    two_branches: bool = False  # pruned rounds also train a fresh-init branch
    schedule: list[int] = field(default_factory=list)  # the rounds the run trains (one-shot levels: some)
    results: list[dict] = field(default_factory=list)
    _open_round: int = -1  # the round started and not yet ended in this stream
    _pruned_start: int = 0  # where pruned rounds' main branch starts (known once one has started afresh)
    _resuming: bool = False  # a resumed RunStarted came; its first RoundStarted starts mid-round
    _epoch_seconds: deque = field(default_factory=lambda: deque(maxlen=EPOCHS_FOR_ETA))
    _round_rates: deque = field(default_factory=lambda: deque(maxlen=ROUNDS_FOR_ETA))
    _round_clock: tuple[int, float, int] | None = None  # (round, when it started, epochs trained since)

    def update(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, RoundStarted):
            self._round_started(event)
        elif isinstance(event, EpochEnded):
            self._epoch_ended(event)
        elif isinstance(event, RoundEnded):
            self.results = [r for r in self.results if r["round"] != event.round] + [event.result]
            self._open_round = -1
        elif isinstance(event, RunEnded):
            self.status = "handing over" if self.handing_over and event.status == "stopped" else event.status
        elif isinstance(event, PauseChanged):
            self._pause_changed(event)
        elif isinstance(event, HandOverChanged):
            self._handover_changed(event)

    def continues(self, event: RoundStarted) -> bool:
        """Whether `event` starts again a round this stream saw start and not end (a resume)."""
        return event.round == self._open_round

    def _run_started(self, event: RunStarted) -> None:
        self.run_id, self.name, self.device = event.run_id, event.name, event.device
        self.rounds, self.epochs, self.status = event.rounds, event.epochs, "running"
        retrain = event.config.get("retrain", {})
        self.two_branches = retrain.get("mode") == "reinit" or bool(retrain.get("compare_reinit"))
        prune = event.config.get("prune", {})
        self.schedule = trained_rounds(event.rounds, prune.get("levels"), bool(prune.get("dense_from")))
        if event.resumed_from_round >= 0:
            self.handing_over = False  # whoever resumed it has taken it over
        self._round_clock = None  # the time across a stop and resume is not training time
        self._resuming = event.resumed_from_round >= 0
        if self._resuming:
            self.round = max(self.round, event.resumed_from_round)

    def _round_started(self, event: RoundStarted) -> None:
        clock = self._round_clock
        if clock is not None and clock[2] and event.round == clock[0] + 1:
            self._round_rates.append((event.time - clock[1]) / clock[2])
        self._round_clock = (event.round, event.time, 0)
        resuming, self._resuming = self._resuming, False
        if self.continues(event):  # the same round again, resumed: go on from where it stood
            self.epoch = event.start_epoch if self.branch == "main" else self.epoch
            return
        if event.round > 0 and not resuming:
            self._pruned_start = event.start_epoch
        self._open_round = event.round
        self.round, self.epoch, self.round_start_epoch = event.round, event.start_epoch, event.start_epoch
        self.branch, self.branch_epoch = "main", 0

    def _epoch_ended(self, event: EpochEnded) -> None:
        if event.branch == "main":
            self.epoch = event.epoch
        else:
            self.branch, self.branch_epoch = event.branch, event.epoch
        self.samples_per_s = event.samples_per_s
        self._epoch_seconds.append(event.seconds)
        if self._round_clock is not None:
            round_index, started, trained = self._round_clock
            self._round_clock = (round_index, started, trained + 1)

    def _pause_changed(self, event: PauseChanged) -> None:
        if event.paused and self.status == "running":
            self.status = "paused"
        elif not event.paused and self.status == "paused":
            self.status = "running"

    def _handover_changed(self, event: HandOverChanged) -> None:
        if event.state == "requested":
            self.handing_over = True
        elif event.state == "spawned":
            self.handover_pid = event.pid
        elif event.state == "failed":
            self.handing_over = False
            if self.status == "handing over":
                self.status = "stopped"

    # ------------------------------------------------------------------ work and time

    def _round_work(self, round_index: int) -> int:
        """Epochs round `round_index` trains (from where it started, for the current one), all branches."""
        if round_index == self.round:
            main = self.epochs - self.round_start_epoch
        else:
            main = self.epochs - (self._pruned_start if round_index > 0 else 0)
        return main + (self.epochs if self.two_branches and round_index > 0 else 0)

    def _round_done(self) -> int:
        main = self.epoch - self.round_start_epoch
        return main + (self.branch_epoch if self.branch != "main" else 0)

    @property
    def epochs_left_in_round(self) -> int:
        return max(0, self._round_work(self.round) - self._round_done())

    @property
    def epochs_left(self) -> int:
        return self.epochs_left_in_round + sum(self._round_work(r) for r in self._schedule() if r > self.round)

    def _schedule(self) -> list[int]:
        return self.schedule or list(range(self.rounds + 1))

    @property
    def seconds_per_epoch(self) -> float | None:
        """Smoothed: the last whole rounds' wall time per epoch trained, else the last epochs' own time."""
        if self._round_rates:
            return statistics.fmean(self._round_rates)
        return statistics.fmean(self._epoch_seconds) if self._epoch_seconds else None

    @property
    def eta_round(self) -> float | None:
        rate = self.seconds_per_epoch
        return None if rate is None else self.epochs_left_in_round * rate

    @property
    def eta_run(self) -> float | None:
        rate = self.seconds_per_epoch
        return None if rate is None else self.epochs_left * rate

    def eta_text(self) -> str:
        """'ETA round 0:12 run 5:40', as the dashboard and the headless progress line both say it."""
        return f"ETA round {format_seconds(self.eta_round)} run {format_seconds(self.eta_run)}"

    @property
    def fraction_done(self) -> float:
        work = self._round_work(self.round)
        round_part = self._round_done() / work if work else 0.0
        schedule = self._schedule()
        done = sum(1 for r in schedule if r < self.round)  # rounds of the schedule before this one
        return min(1.0, (done + round_part) / max(1, len(schedule)))
