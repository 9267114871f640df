"""Progress and ETA from the event stream: shared by the headless reporter and the TUI."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.events import EpochEnded, Event, RoundEnded, RoundStarted, RunEnded, RunStarted


@dataclass
class Progress:
    """Folds events into 'where is the run and how long is left'."""

    run_id: str = ""
    name: str = ""
    device: str = ""
    rounds: int = 0
    epochs: int = 0
    round: int = 0
    epoch: int = 0
    round_epochs: int = 0  # epochs this round trains (fewer after rewinding to iteration t)
    round_start_epoch: int = 0
    samples_per_s: float = 0.0
    epoch_seconds: float = 0.0  # moving average
    status: str = "starting"
    results: list[dict] = field(default_factory=list)

    def update(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.run_id, self.name, self.device = event.run_id, event.name, event.device
            self.rounds, self.epochs, self.status = event.rounds, event.epochs, "running"
            if event.resumed_from_round >= 0:
                self.round = event.resumed_from_round
        elif isinstance(event, RoundStarted):
            self.round, self.epoch = event.round, event.start_epoch
            self.round_start_epoch = event.start_epoch
            self.round_epochs = event.epochs - event.start_epoch
        elif isinstance(event, EpochEnded) and event.branch == "main":
            self.epoch = event.epoch
            self.samples_per_s = event.samples_per_s
            weight = 0.3 if self.epoch_seconds else 1.0
            self.epoch_seconds = (1 - weight) * self.epoch_seconds + weight * event.seconds
        elif isinstance(event, RoundEnded):
            self.results = [r for r in self.results if r["round"] != event.round] + [event.result]
        elif isinstance(event, RunEnded):
            self.status = event.status

    @property
    def epochs_left_in_round(self) -> int:
        return max(0, self.epochs - self.epoch)

    @property
    def eta_round(self) -> float | None:
        return self.epochs_left_in_round * self.epoch_seconds if self.epoch_seconds else None

    @property
    def eta_run(self) -> float | None:
        if not self.epoch_seconds:
            return None
        per_round = self.round_epochs or self.epochs
        return (self.epochs_left_in_round + max(0, self.rounds - self.round) * per_round) * self.epoch_seconds

    @property
    def fraction_done(self) -> float:
        total_rounds = self.rounds + 1
        round_part = (self.epoch - self.round_start_epoch) / max(self.round_epochs or self.epochs, 1)
        return min(1.0, (self.round + round_part) / total_rounds)

