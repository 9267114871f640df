"""Training several members' branches as one packed model: the cohort's counterpart of `Trainer.train`.

Each member brings its own `Trainer` (model, data with its noisy labels, masks, seed, callbacks) and
`TrainSchedule`; all start at the same iteration of the same round. Every step gathers each member's
own batch (its own data order: `epoch_generator` of its seed), runs one batched forward and backward,
and steps each member with its own SGD settings; pruned weights are zeroed after every step, as on the
fast path. At an epoch end each member gets its EpochStats, its callbacks (events, checkpoints) and a
checkpoint when any member's clock asks for one. A member whose loss is NaN, that is stopped, or whose
callback fails drops out with its own error; the others go on.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..config import ExperimentConfig
from ..data.datasets import epoch_plan, shift_and_flip
from ..errors import StopRequested
from .checkpoint import Checkpointer
from .cohort_model import PackedMasks, PackedMLP, PackedSGD
from .training import (
    EpochStats,
    RoundTraining,
    Trainer,
    TrainSchedule,
    check_finite,
    lr_schedule,
    snapshot,
)  # fmt: skip


@dataclass
class MemberTraining:
    """One member's request: train this branch (`trainer`) on this schedule."""

    run_id: str
    trainer: Trainer
    schedule: TrainSchedule
    checkpoints: Checkpointer | None = None  # written together with the others' (see CohortTrainer)
    config: ExperimentConfig | None = None  # the member's whole config: what it packs by


def shared_sources(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The distinct tensors among `tensors`, and each one's index into them (K,): members with the same data
    (every dataset but synthetic data of other seeds) share one copy."""
    distinct: list[torch.Tensor] = []
    index = []
    for tensor in tensors:
        found = next((i for i, seen in enumerate(distinct) if _same(seen, tensor)), None)
        if found is None:
            distinct.append(tensor)
            found = len(distinct) - 1
        index.append(found)
    return distinct, torch.tensor(index, device=tensors[0].device)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a is b or (a.shape == b.shape and a.data_ptr() == b.data_ptr() and a.stride() == b.stride()):
        return True
    return a.shape == b.shape and torch.equal(a[:1], b[:1]) and torch.equal(a, b)  # the first row settles most


def stacked_sources(distinct: list[torch.Tensor]) -> torch.Tensor:
    """(U, N, ...): one tensor as a view; the rows of an earlier round's stack as that stack; else a stack."""
    if len(distinct) == 1:
        return distinct[0].unsqueeze(0)
    base = distinct[0]._base
    if base is not None and len(base) == len(distinct) and all(
            t._base is base and t.data_ptr() == base[i].data_ptr() for i, t in enumerate(distinct)):
        return base
    return torch.stack(distinct)


class CohortTrainer:
    """Trains the members' branches together; `train()` returns each member's RoundTraining, or its error."""

    def __init__(self, members: list[MemberTraining], on_drop=None):
        self.members = members
        self.on_drop = on_drop or (lambda index, error: None)  # told at once: a stopped member ends without waiting
        self.trainers = [m.trainer for m in members]
        lead = self.trainers[0]
        self.device, self.config, self.per_epoch = lead.device, lead.config, lead.iterations_per_epoch
        self.outcomes: list[BaseException | None] = [None] * len(members)
        self.results = [RoundTraining() for _ in members]
        self.x_train, self.train_source = self._share("x_train")
        self.x_test, self.test_source = self._share("x_test")
        self.train_rows = self.x_train.flatten(0, 1)  # (U * N, ...); member k's rows start at train_offsets[k]
        self.train_offsets = self.train_source[:, None] * self.x_train.shape[1]
        self.y_train = torch.stack([t.data.y_train for t in self.trainers])
        self.y_test = torch.stack([t.data.y_test for t in self.trainers])

    def _share(self, field: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Members' inputs as one tensor (U, N, ...), equal ones once; each member's Dataset then holds its row
        of it, so the data are in memory once and the next round finds them stacked already."""
        distinct, index = shared_sources([getattr(t.data, field) for t in self.trainers])
        stacked = stacked_sources(distinct)
        for trainer, which in zip(self.trainers, index.tolist()):
            setattr(trainer.data, field, stacked[which])
        return stacked, index

    @property
    def active(self) -> list[int]:
        return [k for k, outcome in enumerate(self.outcomes) if outcome is None]

    def _drop(self, index: int, error: BaseException) -> None:
        if self.outcomes[index] is None:
            self.outcomes[index] = error
            self.on_drop(index, error)

    def train(self) -> list[RoundTraining | BaseException]:
        start = self.members[0].schedule.start_iteration
        self.net = PackedMLP([t.model for t in self.trainers])
        self.autocast = self.trainers[0].autocast()  # once a round, not once a batch (as Trainer.train does)
        self.masks = PackedMasks(self.net, [t.masks for t in self.trainers])
        self.masks.apply()
        self.optimizer = PackedSGD(self.net, [t.config for t in self.trainers],
                                   fused=self.trainers[0].runtime.fused_optimizer)
        for index, member in enumerate(self.members):
            if member.schedule.optimizer_state is not None:  # resuming mid-round: momentum carries on
                self.optimizer.load_member(index, member.schedule.optimizer_state)
        self.lr_of = [lr_schedule(t.config, self.per_epoch, m.schedule.fixed_lr)
                      for t, m in zip(self.trainers, self.members)]
        self.optimizer.set_lrs([lr(start) for lr in self.lr_of])
        self._capture_due(start, at_start=True)
        iteration = start
        for epoch in range(start // self.per_epoch, self.config.epochs):
            iteration = self._epoch(epoch, iteration)
            if not self.active:
                break
        for index in self.active:
            if self.members[index].schedule.capture_iteration is not None and self.results[index].captured is None:
                self.results[index].captured = snapshot(self.trainers[index].model)
        return [outcome if outcome is not None else result for outcome, result in zip(self.outcomes, self.results)]

    # ------------------------------------------------------------------ one epoch

    def _epoch(self, epoch: int, iteration: int) -> int:
        started = time.perf_counter()
        count = len(self.members)
        loss_sum = torch.zeros(count, device=self.device)
        correct = torch.zeros(count, device=self.device, dtype=torch.long)
        plan = self._plan(epoch)
        batch_size, samples = self.config.batch_size, self.y_train.shape[1]
        seen = 0
        for first in range((iteration - epoch * self.per_epoch) * batch_size, samples, batch_size):
            self._check_controls()
            if not self.active:
                return iteration
            lrs = [lr(iteration) for lr in self.lr_of]
            if lrs != self.optimizer.lrs:
                self.optimizer.set_lrs(lrs)
            losses, logits, targets = self._step(plan[:, :, first : first + batch_size])
            iteration += 1
            loss_sum += losses.detach() * targets.shape[1]
            correct += (logits.detach().argmax(-1) == targets).sum(1)
            seen += targets.shape[1]
            self._capture_due(iteration)
        self._end_epoch(epoch, iteration, loss_sum, correct, seen, started)
        return iteration

    def _plan(self, epoch: int) -> torch.Tensor:
        """Each member's epoch plan (order, and crop/flip offsets when augmenting) from its own generator."""
        samples, augment = self.y_train.shape[1], self.config.augment and self.x_train.dim() == 5
        return torch.stack([epoch_plan(samples, t.epoch_generator(epoch),
                                       augment, self.device) for t in self.trainers])

    def _step(self, part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One SGD step of every member on its own batch; (per-member mean losses, logits, targets)."""
        index = part[:, 0]
        rows = (index + self.train_offsets).flatten()  # one index_select: cheaper than indexing (U, N, ...)
        inputs = self.train_rows.index_select(0, rows).view(*index.shape, *self.x_train.shape[2:])  # (K, B, ...)
        if part.shape[1] > 1:  # crop and flip, as iterate_batches does for one member
            shape = inputs.shape
            inputs = shift_and_flip(inputs.flatten(0, 1), part[:, 1].flatten(), part[:, 2].flatten(),
                                    part[:, 3].flatten().bool()).view(shape)
        targets = self.y_train.gather(1, index)
        if self.autocast is None:  # full precision: forward and backward written out (PackedMLP.train_step)
            losses, logits = self.net.train_step(inputs, targets)
        else:
            with self.autocast():
                logits = self.net(inputs)
                losses = nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten(),
                                                     reduction="none").view(targets.shape).mean(1)
            self.net.zero_grad()
            losses.sum().backward()  # each member's loss reaches only its own slice of every tensor
        self.optimizer.step()
        self.masks.apply()
        return losses, logits, targets

    def _check_controls(self) -> None:
        for index in self.active:
            try:
                self.trainers[index].control.check()
            except StopRequested as stop:
                self._drop(index, stop)

    def _capture_due(self, iteration: int, at_start: bool = False) -> None:
        """Keep a member's weights at its capture iteration (round 0: the rewind point)."""
        for index in self.active:
            due = self.members[index].schedule.capture_iteration
            if due is not None and (due == iteration or (at_start and due <= iteration)):
                self.results[index].captured = snapshot(self.trainers[index].model)

    # ------------------------------------------------------------------ epoch end

    def _end_epoch(self, epoch: int, iteration: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int,
                   started: float) -> None:
        train_losses = (loss_sum / max(seen, 1)).tolist()  # the epoch's one host synchronisation
        train_accs = (correct.float() / max(seen, 1)).tolist()
        test_losses, test_accs = self._evaluate()
        seconds = time.perf_counter() - started
        for index in self.active:
            trainer, lr = self.trainers[index], self.lr_of[index](iteration - 1)
            try:
                check_finite(train_losses[index], trainer.round_index, epoch, trainer.config.lr)
                stats = EpochStats(epoch=epoch, train_loss=train_losses[index], train_acc=train_accs[index],
                                   test_loss=test_losses[index], test_acc=test_accs[index], lr=lr, seconds=seconds,
                                   samples_per_s=seen / max(seconds, 1e-9))
                self.results[index].epochs.append(stats)
                if trainer.on_epoch:
                    trainer.on_epoch(stats)
                if trainer.on_epoch_end:
                    trainer.on_epoch_end(epoch, self.optimizer.member_optimizer(index), self.results[index])
            except Exception as error:  # NaN, a full disk: this member fails, the others go on
                self._drop(index, error)
        self._checkpoint_together()

    def _checkpoint_together(self) -> None:
        """When one member's clock wrote a checkpoint, write the others' too: a killed cohort resumes together."""
        keepers = [(k, self.members[k].checkpoints) for k in self.active if self.members[k].checkpoints]
        if not any(checkpoints.pending is None for _, checkpoints in keepers):
            return
        for index, checkpoints in keepers:
            try:
                checkpoints.write_pending()
            except Exception as error:
                self._drop(index, error)

    @torch.inference_mode()
    def _evaluate(self) -> tuple[list[float], list[float]]:
        """Every member's test loss and accuracy, as core.engine.training.evaluate gives them, in batched passes."""
        count, samples = len(self.members), self.y_test.shape[1]
        loss_sum = torch.zeros(count, device=self.device)
        correct = torch.zeros(count, device=self.device, dtype=torch.long)
        size = self.config.eval_batch_size
        for first in range(0, samples, size):
            inputs = self.x_test[:, first : first + size][self.test_source]
            targets = self.y_test[:, first : first + size]
            with self.autocast() if self.autocast else contextlib.nullcontext():
                logits = self.net(inputs)
            logits = logits.float()
            loss_sum += nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                    reduction="none").view(targets.shape).sum(1)
            correct += (logits.argmax(-1) == targets).sum(1)
        return (loss_sum / samples).tolist(), (correct.float() / samples).tolist()
