"""Training one branch of a round under way (main or reinit), during the run (a finished run's later branches,
`sdd-tui branch`, are core.analysis.finished_run_branches): from where the schedule says, or on from the epoch
end a stopped run left in its checkpoint; then the branch's result."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import ExperimentConfig
from ..data.datasets import Dataset, batches_per_epoch
from ..events import EpochEnded, Sink
from .checkpoint import Checkpointer
from .round_result import round_result
from .run_models import RunModels
from .run_state import PartialRound, RoundInProgress, restore_rng
from .training import Branch, Control, EpochStats, RoundTraining, Trainer, TrainSchedule, autocast_for


class RoundBranchTrainer:
    """Trains branches for one run: each epoch becomes an EpochEnded event and a possible checkpoint."""

    def __init__(self, config: ExperimentConfig, data: Dataset, control: Control, models: RunModels,
                 checkpoints: Checkpointer, sink: Sink, say: Callable[[str], None]):
        self.config, self.data, self.control, self.models = config, data, control, models
        self.checkpoints, self.sink, self.say = checkpoints, sink, say
        self.iterations_per_epoch = batches_per_epoch(len(data.y_train), config.train.batch_size)
        self.current_epoch = 0  # of the branch under way, counted from 1 (for messages)

    def train(self, current: RoundInProgress, model: nn.Module, branch: Branch, start: int,
              partial: PartialRound | None, fixed_lr: float | None = None,
              capture_iteration: int | None = None) -> RoundTraining:
        """Train `branch` of the `current` round from iteration `start`, or on from `partial` when it is this branch's."""
        previous, captured, optimizer_state = [], None, None
        if partial is not None and partial.branch is branch:
            model.load_state_dict(partial.model)
            start = partial.next_epoch * self.iterations_per_epoch
            previous, captured, optimizer_state = partial.epochs, partial.captured, partial.optimizer
            capture_iteration = None if captured is not None else capture_iteration
            current.started = time.perf_counter() - partial.seconds
            self.say(f"resuming round {partial.round} at epoch {partial.next_epoch + 1} ({branch} branch)")
            restore_rng(partial.rng)

        def epoch_end(epoch: int, optimizer: torch.optim.Optimizer, training: RoundTraining) -> None:
            self.checkpoints.epoch_ended(current.at_epoch_end(
                branch, epoch, model, optimizer, [*previous, *training.epochs],
                captured if captured is not None else training.captured))

        training = self._run(self._trainer(current, model, branch, epoch_end),
                             TrainSchedule(start, fixed_lr, capture_iteration, optimizer_state))
        training.epochs = previous + training.epochs
        if captured is not None:
            training.captured = captured
        return training

    def _run(self, trainer: Trainer, schedule: TrainSchedule) -> RoundTraining:
        """Train one branch here and now (a cohort's members hand theirs to the cohort instead)."""
        return trainer.train(**vars(schedule))

    def result(self, current: RoundInProgress, model: nn.Module, init, epochs: list[EpochStats]) -> dict[str, Any]:
        cfg = self.config
        return round_result(current.index, model, self.data, current.masks,
                            init if cfg.analysis.learning_distance else None, epochs, current.started,
                            cfg.train.eval_batch_size, autocast_for(self.data.x_train.device, cfg.runtime.mixed_precision))

    def _trainer(self, current: RoundInProgress, model: nn.Module, branch: Branch, epoch_end) -> Trainer:
        cfg, run_id = self.config, self.checkpoints.run_id

        def on_epoch(stats: EpochStats) -> None:
            self.current_epoch = stats.epoch + 1
            self.sink(EpochEnded.from_stats(stats, run_id=run_id, time=time.time(), round=current.index,
                                            rounds=cfg.prune.rounds, epochs=cfg.train.epochs, branch=branch))

        return Trainer(model, self.data, cfg.train, current.masks, self.control, amp=cfg.runtime.mixed_precision,
                       round_index=current.index, seed=cfg.runtime.seed, seed_scheme=cfg.runtime.seed_scheme, branch=branch,
                       on_epoch=on_epoch,
                       on_epoch_end=epoch_end, fast=cfg.runtime.fast, forward=self.models.forward_of(model))
