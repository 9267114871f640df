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
from enum import StrEnum

import torch
from torch import nn

from .. import seeds
from ..config import TrainConfig
from ..data.datasets import Dataset, batches_per_epoch, training_batches
from ..errors import SddError, StopRequested
from ..events import EpochMetrics
from ..seeds import SEED_SCHEME, Purpose
from .pruning import MaskApplier
from .runtime_choices import RuntimeChoices


class TrainingDiverged(SddError):
    """The loss became NaN or infinite."""


REQUEST_POLL_S = 0.2  # how often a run looks for a request from another process (a stat; a read when it changed)


class Control:
    """Stop and pause flags shared between the engine thread and whoever drives it, checked between batches.

    `listen` adds requests from other processes (core.engine.run_control: `sdd-tui pause ID`, a dashboard in another
    process) and says when the run actually holds or goes on (`on_pause`: the PauseChanged event), whoever
    asked. A member of a packed cohort cannot hold alone (`pause_refusal` says why): its pause is refused.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.pause_refusal = ""
        self._requests: Callable[[], str | None] | None = None
        self._on_pause: Callable[[bool], None] = lambda paused: None
        self._on_refused: Callable[[str], None] = lambda reason: None
        self._announced = False  # the pause state last said (by on_pause, or by whoever set it and said so)
        self._polled_at = 0.0

    def listen(self, requests: Callable[[], str | None], on_pause: Callable[[bool], None],
               on_refused: Callable[[str], None]) -> None:
        """`requests()`: the action of a new request from another process, or None."""
        self._requests, self._on_pause, self._on_refused = requests, on_pause, on_refused

    def set_paused(self, paused: bool, announced: bool = False) -> None:
        """Hold at the next batch, or go on; `announced`: the caller has recorded that itself."""
        if paused:
            self.paused.set()
        else:
            self.paused.clear()
        if announced:
            self._announced = paused

    def apply(self, action: str) -> None:
        """A request: pause, unpause or stop."""
        if action == "stop":
            self.stop.set()
        elif action == "pause" and self.pause_refusal:
            self._on_refused(self.pause_refusal)
        elif action in ("pause", "unpause"):
            self.set_paused(action == "pause")

    def check(self) -> None:
        """Called between batches: waits while paused, raises StopRequested once stop is set."""
        self._read_requests()
        if self.paused.is_set() and not self.stop.is_set():
            self._announce(True)
            while self.paused.is_set() and not self.stop.is_set():
                self.stop.wait(0.05)
                self._read_requests()
        if not self.paused.is_set():
            self._announce(False)
        if self.stop.is_set():
            raise StopRequested()

    def _announce(self, paused: bool) -> None:
        if paused != self._announced:
            self._announced = paused
            self._on_pause(paused)

    def _read_requests(self) -> None:
        if self._requests is None:
            return
        now = time.monotonic()
        if now - self._polled_at < REQUEST_POLL_S:
            return
        self._polled_at = now
        action = self._requests()
        if action is not None:
            self.apply(action)


def lr_at(iteration: int, iterations_per_epoch: int, base_lr: float, milestones: list[int], gamma: float,
          warmup: int = 0) -> float:
    """The official (open_lth) schedule: base_lr * gamma ** (milestones reached at this iteration's epoch),
    times min(1, iteration / warmup) during a linear warm-up of `warmup` iterations (so iteration 0 steps at
    LR 0, as open_lth's LambdaLR does before its first step)."""
    epoch = iteration // iterations_per_epoch
    lr = base_lr * gamma ** sum(1 for m in milestones if epoch >= m)
    return lr * min(1.0, iteration / warmup) if warmup > 0 else lr


def lr_schedule(config: TrainConfig, iterations_per_epoch: int, fixed_lr: float | None) -> Callable[[int], float]:
    """The LR of each iteration: `fixed_lr` throughout (finetuning, re-dense), else the config's step
    schedule with its warm-up. A function of the iteration alone: a round rewound to iteration t starts
    with the LR (and the warm-up factor) the dense run had at t."""
    if fixed_lr is not None:
        return lambda iteration: fixed_lr
    warmup = config.warmup_iterations(iterations_per_epoch)
    return lambda iteration: lr_at(iteration, iterations_per_epoch, config.lr, config.milestones, config.gamma,
                                   warmup)


def check_finite(train_loss: float, round_index: int, epoch: int, lr: float) -> None:
    """TrainingDiverged when an epoch's mean training loss is NaN or infinite."""
    if not math.isfinite(train_loss):
        raise TrainingDiverged(
            f"loss became {train_loss} in round {round_index}, epoch {epoch + 1}; "
            f"lower train.lr (now {lr}) or check the data"
        )


def make_optimizer(model: nn.Module, config: TrainConfig, lr: float, fused: bool = False) -> torch.optim.Optimizer:
    """SGD or Adam stepping all tensors at once: `fused` (one kernel, CUDA) or foreach."""
    params = [p for p in model.parameters() if p.requires_grad]
    implementation = {"fused": True} if fused else {"foreach": True}
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay, **implementation)
    return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay,
                           **implementation)


class Branch(StrEnum):
    """What a trainer trains: a round's main network, its random-reinit branch, or a re-dense analysis.

    The value is what events say (`EpochEnded.branch`); `stream` separates the branches' data orders.
    """

    MAIN = "main"
    REINIT = "reinit"
    REDENSE = "redense"  # core.analysis.flatness; never in a run's events

    @property
    def stream(self) -> int:
        return _STREAMS[self]


_STREAMS = {Branch.MAIN: 0, Branch.REINIT: 1, Branch.REDENSE: 2}  # the spawn keys of the branches' data orders


def epoch_generator(seed: int, round_index: int, epoch: int, stream: int = 0,
                    scheme: int = SEED_SCHEME) -> torch.Generator:
    """Data order and augmentation of one epoch depend only on (seed, round, epoch, branch stream)."""
    return seeds.generator(seed, Purpose.DATA_ORDER, round_index, epoch, stream, scheme=scheme)


def autocast_for(device: torch.device, enabled: bool):
    """A context factory for mixed precision on CUDA (bf16, fp16 where bf16 is missing), or None."""
    return RuntimeChoices.for_device(device, fast=enabled, amp=enabled).autocast(device)


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


@dataclass(frozen=True, kw_only=True)
class EpochStats(EpochMetrics):
    """What one epoch measured, and which epoch: counted from 0 here (EpochEnded.from_stats counts from 1)."""

    epoch: int


@dataclass
class TrainSchedule:
    """Where `Trainer.train` starts and what it carries over: its keyword arguments, as one value."""

    start_iteration: int = 0
    fixed_lr: float | None = None
    capture_iteration: int | None = None
    optimizer_state: dict | None = None


@dataclass
class RoundTraining:
    """What one call of `train` produced."""

    epochs: list[EpochStats] = field(default_factory=list)
    captured: dict[str, torch.Tensor] | None = None


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def compile_model(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                  autocast=None, backend: str = "inductor") -> tuple[nn.Module, float]:
    """torch.compile `model` and build its training and evaluation graphs now; returns (compiled, seconds).

    The warm-up runs one forward/backward and one inference pass on a batch, then restores the
    parameters and buffers (BatchNorm statistics), so training is the same as without it. `backend` is
    torch.compile's (RuntimeChoices.compile_backend: tests build with a cheap one).
    """
    started = time.perf_counter()
    saved, was_training = snapshot(model), model.training
    try:
        compiled = torch.compile(model, backend=backend)
        compiled.train()
        with autocast() if autocast else contextlib.nullcontext():
            loss = nn.functional.cross_entropy(compiled(inputs).float(), targets)
        loss.backward()
        evaluate(compiled, inputs, targets, len(targets), autocast)
    finally:  # also when compiling fails half way: the caller may go on eagerly
        model.zero_grad(set_to_none=True)
        model.load_state_dict(saved)
        model.train(was_training)
    return compiled, time.perf_counter() - started


@dataclass
class Trainer:
    """Trains a (masked) model for one round.

    fast (default): the dataset stays on the training device, batches are gathered and augmented
    there, CUDA runs under bf16 autocast (fp16 with loss scaling where bf16 is missing) with a fused
    optimizer, and the loop never waits for the host: metrics are read once per epoch.
    slow (`fast=False`): the standard recipe of core.engine.reference (Dataset + DataLoader, eager fp32).
    `forward` is an optional compiled wrapper of `model`; masks always address `model` itself.
    `choices` replaces what the fast path turns on for the device (tests: a GPU's choices on a CPU).
    """

    model: nn.Module
    data: Dataset
    config: TrainConfig
    masks: dict[str, torch.Tensor]
    control: Control
    amp: bool = False
    round_index: int = 0
    seed: int = 0
    branch: Branch = Branch.MAIN
    seed_scheme: int = SEED_SCHEME  # a run's runtime.seed_scheme (core.seeds)
    on_epoch: Callable[[EpochStats], None] | None = None
    # called after on_epoch with (epoch, optimizer, result so far): where checkpoints are taken
    on_epoch_end: Callable[[int, torch.optim.Optimizer, "RoundTraining"], None] | None = None
    fast: bool = True
    forward: nn.Module | None = None
    choices: RuntimeChoices | None = None

    @property
    def device(self) -> torch.device:
        return self.data.x_train.device

    @property
    def runner(self) -> nn.Module:
        """What computes the forward pass: the compiled wrapper when there is one, else the model."""
        return self.forward if self.forward is not None else self.model

    @property
    def iterations_per_epoch(self) -> int:
        return batches_per_epoch(len(self.data.y_train), self.config.batch_size)

    @property
    def total_iterations(self) -> int:
        return self.config.epochs * self.iterations_per_epoch

    @property
    def runtime(self) -> RuntimeChoices:
        """What the fast path turns on here: `choices` when given, else the device's."""
        if self.choices is not None:
            return self.choices
        return RuntimeChoices.for_device(self.device, self.fast, self.amp)

    def amp_dtype(self) -> torch.dtype | None:
        return self.runtime.amp_dtype

    def autocast(self):
        return self.runtime.autocast(self.device)

    def epoch_generator(self, epoch: int) -> torch.Generator:
        """This branch's order of `epoch`; with train.data_order=same, the one order every round and branch
        of the run sees at that epoch (the official code's data_order_seed + epoch)."""
        same = self.config.data_order == "same"
        round_index, stream = (0, 0) if same else (self.round_index, self.branch.stream)
        return epoch_generator(self.seed, round_index, epoch, stream, self.seed_scheme)

    def _batches(self, epoch: int, skip: int):
        generator = self.epoch_generator(epoch)
        if self.fast:
            return training_batches(self.data, self.config.batch_size, generator, self.config.augment, start=skip)
        from .reference import loader_batches

        if "_host_data" not in self.__dict__:  # the DataLoader reads CPU tensors: copy a GPU dataset once
            self._host_data = self.data.to("cpu")
        return loader_batches(self._host_data, self.config.batch_size, generator, self.config.augment, skip,
                              self.device)

    def _step_function(self, optimizer: torch.optim.Optimizer, applier: MaskApplier):
        """One optimizer step on a batch; returns (loss, logits) as device tensors, never read here."""
        forward, runtime = self.runner, self.runtime
        autocast = runtime.autocast(self.device)
        scaler = torch.amp.GradScaler(self.device.type) if runtime.grad_scaling else None
        mask_grads = not self.fast  # the fast path only re-zeroes weights: the same result, one op less

        def step(inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with autocast() if autocast else contextlib.nullcontext():
                logits = forward(inputs)
                loss = nn.functional.cross_entropy(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if mask_grads:
                    applier.grads()
                optimizer.step()
            applier.weights()
            return loss, logits

        return step

    def train(
        self,
        start_iteration: int = 0,
        fixed_lr: float | None = None,
        capture_iteration: int | None = None,
        optimizer_state: dict | None = None,
    ) -> RoundTraining:
        """Train from `start_iteration` to the end of the schedule; optionally snapshot at one iteration."""
        config, model, device = self.config, self.model, self.device
        per_epoch, runtime = self.iterations_per_epoch, self.runtime
        if runtime.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True  # shapes repeat every batch: pick the fastest kernels once
        applier = MaskApplier(model, self.masks)
        applier.weights()
        lr_of = lr_schedule(config, per_epoch, fixed_lr)
        optimizer = make_optimizer(model, config, lr_of(start_iteration), fused=runtime.fused_optimizer)
        if optimizer_state is not None:  # resuming mid-round: momentum and Adam moments carry on
            optimizer.load_state_dict(optimizer_state)
        step = self._step_function(optimizer, applier)
        result = RoundTraining()
        if capture_iteration is not None and capture_iteration <= start_iteration:
            result.captured = snapshot(model)
        iteration = start_iteration
        model.train()
        for epoch in range(start_iteration // per_epoch, config.epochs):
            started = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen, lr = 0, None
            for inputs, targets in self._batches(epoch, iteration - epoch * per_epoch):
                self.control.check()
                if lr_of(iteration) != lr:
                    lr = lr_of(iteration)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                loss, logits = step(inputs, targets)
                iteration += 1
                loss_sum += loss.detach() * len(targets)
                correct += (logits.detach().argmax(1) == targets).sum()
                seen += len(targets)
                if capture_iteration is not None and iteration == capture_iteration:
                    result.captured = snapshot(model)
            stats = self._end_epoch(epoch, loss_sum, correct, seen, lr_of(iteration - 1), started)
            result.epochs.append(stats)
            if self.on_epoch:
                self.on_epoch(stats)
            if self.on_epoch_end:
                self.on_epoch_end(epoch, optimizer, result)
        if capture_iteration is not None and result.captured is None:
            result.captured = snapshot(model)
        return result

    def _end_epoch(self, epoch: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, lr: float,
                   started: float) -> EpochStats:
        """Read the epoch's device-side sums (the one host synchronisation) and evaluate on the test set."""
        train_loss = float(loss_sum) / max(seen, 1)
        check_finite(train_loss, self.round_index, epoch, self.config.lr)
        test = evaluate(self.runner, self.data.x_test, self.data.y_test,
                        self.config.eval_batch_size, self.autocast())
        seconds = time.perf_counter() - started
        return EpochStats(epoch=epoch, train_loss=train_loss, train_acc=float(correct) / max(seen, 1),
                          test_loss=test.loss, test_acc=test.acc, lr=lr, seconds=seconds,
                          samples_per_s=seen / max(seconds, 1e-9))
