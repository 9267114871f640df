"""One round of training: optimizer, an LR schedule that can start at iteration t, evaluation.

The loop keeps metrics on the device and reads them once per epoch; it checks the stop and pause
flags between batches, and keeps pruned weights at exactly zero after every step.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from core.config import TrainConfig
from core.data import Dataset, batches_per_epoch, iterate_batches
from core.errors import SddError, StopRequested
from core.pruning import MaskApplier


class TrainingDiverged(SddError):
    """The loss became NaN or infinite."""


class Control:
    """Stop and pause flags shared between the engine thread and whoever drives it."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.paused = threading.Event()

    def check(self) -> None:
        """Called between batches: waits while paused, raises StopRequested once stop is set."""
        while self.paused.is_set() and not self.stop.is_set():
            self.stop.wait(0.05)
        if self.stop.is_set():
            raise StopRequested()


def lr_at(iteration: int, iterations_per_epoch: int, base_lr: float, milestones: list[int], gamma: float) -> float:
    """Step schedule: base_lr * gamma ** (number of milestones reached at this iteration's epoch)."""
    epoch = iteration // iterations_per_epoch
    return base_lr * gamma ** sum(1 for m in milestones if epoch >= m)


def make_optimizer(model: nn.Module, config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay, foreach=True)
    return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay, foreach=True)


def epoch_generator(seed: int, round_index: int, epoch: int, branch: int = 0) -> torch.Generator:
    """Data order and augmentation of one epoch depend only on (seed, round, epoch, branch)."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + round_index) * 10_007 + epoch) * 7 + branch)


@dataclass
class Evaluation:
    loss: float
    acc: float
    predictions: torch.Tensor


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, autocast=None) -> Evaluation:
    """Loss and accuracy against labels `y`, plus the predicted labels (on the data's device)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    predictions = []
    for first in range(0, len(y), batch_size):
        with autocast() if autocast else contextlib.nullcontext():
            logits = model(x[first : first + batch_size])
        logits = logits.float()
        loss_sum += nn.functional.cross_entropy(logits, y[first : first + batch_size], reduction="sum")
        predictions.append(logits.argmax(1))
    model.train(was_training)
    predicted = torch.cat(predictions)
    acc = float((predicted == y).float().mean())
    return Evaluation(float(loss_sum) / len(y), acc, predicted)


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float
    samples_per_s: float


@dataclass
class RoundTraining:
    """What one call of `train` produced."""

    epochs: list[EpochStats] = field(default_factory=list)
    captured: dict[str, torch.Tensor] | None = None


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class Trainer:
    """Trains a (masked) model on a device-resident dataset for one round."""

    model: nn.Module
    data: Dataset
    config: TrainConfig
    masks: dict[str, torch.Tensor]
    control: Control
    amp: bool = False
    round_index: int = 0
    seed: int = 0
    branch: int = 0
    on_epoch: Callable[[EpochStats], None] | None = None
    # called after on_epoch with (epoch, optimizer, result so far): where checkpoints are taken
    on_epoch_end: Callable[[int, torch.optim.Optimizer, "RoundTraining"], None] | None = None

    @property
    def iterations_per_epoch(self) -> int:
        return batches_per_epoch(len(self.data.y_train), self.config.batch_size)

    @property
    def total_iterations(self) -> int:
        return self.config.epochs * self.iterations_per_epoch

    def autocast(self):
        device_type = self.data.x_train.device.type
        if not self.amp or device_type != "cuda":
            return None
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return lambda: torch.autocast(device_type, dtype=dtype)

    def train(
        self,
        start_iteration: int = 0,
        fixed_lr: float | None = None,
        capture_iteration: int | None = None,
        optimizer_state: dict | None = None,
    ) -> RoundTraining:
        """Train from `start_iteration` to the end of the schedule; optionally snapshot at one iteration."""
        config, model = self.config, self.model
        per_epoch = self.iterations_per_epoch
        applier = MaskApplier(model, self.masks)
        applier.weights()
        lr_of = (lambda it: fixed_lr) if fixed_lr is not None else (
            lambda it: lr_at(it, per_epoch, config.lr, config.milestones, config.gamma))
        optimizer = make_optimizer(model, config, lr_of(start_iteration))
        if optimizer_state is not None:  # resuming mid-round: momentum and Adam moments carry on
            optimizer.load_state_dict(optimizer_state)
        autocast = self.autocast()
        result = RoundTraining()
        if capture_iteration is not None and capture_iteration <= start_iteration:
            result.captured = snapshot(model)
        iteration = start_iteration
        model.train()
        for epoch in range(start_iteration // per_epoch, config.epochs):
            started = time.perf_counter()
            loss_sum = torch.zeros((), device=self.data.x_train.device)
            correct = torch.zeros((), device=self.data.x_train.device, dtype=torch.long)
            seen = 0
            generator = epoch_generator(self.seed, self.round_index, epoch, self.branch)
            skip = iteration - epoch * per_epoch
            for inputs, targets in iterate_batches(self.data.x_train, self.data.y_train, config.batch_size,
                                                   generator, config.augment, start=skip):
                self.control.check()
                lr = lr_of(iteration)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with autocast() if autocast else contextlib.nullcontext():
                    logits = model(inputs)
                    loss = nn.functional.cross_entropy(logits.float(), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                applier.grads()
                optimizer.step()
                applier.weights()
                iteration += 1
                loss_sum += loss.detach() * len(targets)
                correct += (logits.detach().argmax(1) == targets).sum()
                seen += len(targets)
                if capture_iteration is not None and iteration == capture_iteration:
                    result.captured = snapshot(model)
            train_loss = float(loss_sum) / max(seen, 1)
            if not math.isfinite(train_loss):
                raise TrainingDiverged(
                    f"loss became {train_loss} in round {self.round_index}, epoch {epoch + 1}; "
                    f"lower train.lr (now {config.lr}) or check the data"
                )
            test = evaluate(model, self.data.x_test, self.data.y_test, config.eval_batch_size, autocast)
            seconds = time.perf_counter() - started
            stats = EpochStats(epoch, train_loss, float(correct) / max(seen, 1), test.loss, test.acc,
                               lr_of(iteration - 1), seconds, seen / max(seconds, 1e-9))
            result.epochs.append(stats)
            if self.on_epoch:
                self.on_epoch(stats)
            if self.on_epoch_end:
                self.on_epoch_end(epoch, optimizer, result)
        if capture_iteration is not None and result.captured is None:
            result.captured = snapshot(model)
        return result
