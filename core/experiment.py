"""The prune-retrain loop: train dense, prune, reset weights per the retrain mode, retrain, repeat.

It reports only through events, writes a checkpoint after every round, and resumes from one.
"""

from __future__ import annotations

import functools
import platform
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core import pruning
from core.checkpoint import CheckpointClock, optimizer_copy, read_checkpoint, restore_rng, rng_state, write_checkpoint
from core.config import ExperimentConfig
from core.data import Dataset, load_dataset
from core.errors import SddError, StopRequested
from core.events import EpochEnded, Message, RoundEnded, RoundStarted, RunEnded, RunStarted, Sink
from core.models import build_model, prunable_names
from core.paths import RunPaths
from core.plugins import plugin_provenance
from core.training import Control, EpochStats, RoundTraining, Trainer, compile_model, evaluate, snapshot


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present; asking for a GPU that is not there is a user error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SddError(f"runtime.device={requested} but no CUDA GPU is visible; use --device cpu")
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise SddError(f"runtime.device={requested} but only {torch.cuda.device_count()} GPU(s) are visible")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise SddError("runtime.device=mps but MPS is not available; use --device cpu")
    return torch.device(requested)


def library_versions() -> dict[str, str]:
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__}


def learning_distance(model: nn.Module, init: dict[str, torch.Tensor], masks: pruning.Masks) -> float:
    """||w_learned - w_init||_2 over the prunable weights, pruned weights counted as 0."""
    params = dict(model.named_parameters())
    total = torch.zeros((), dtype=torch.float64)
    for name, mask in masks.items():
        learned = params[name].detach().float() * mask
        total += (learned - init[name].float()).pow(2).sum().double().cpu()
    return float(total.sqrt())


def round_metrics(model: nn.Module, data: Dataset, batch_size: int, autocast=None) -> dict[str, float]:
    """Train accuracy on the noisy labels, and the noisy subset against its noisy and true labels."""
    train = evaluate(model, data.x_train, data.y_train, batch_size, autocast)
    noisy = data.noisy_mask
    count = int(noisy.sum())
    memorised = float((train.predictions[noisy] == data.y_train[noisy]).float().mean()) if count else float("nan")
    true_acc = float((train.predictions[noisy] == data.y_train_clean[noisy]).float().mean()) if count else float("nan")
    return {"train_acc": train.acc, "train_loss": train.loss, "noisy_memorized": memorised, "noisy_true_acc": true_acc}


def _finite_or_none(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None


@dataclass
class State:
    """What a checkpoint holds: the state after the last finished round, and maybe an unfinished one."""

    round: int  # the last finished round; -1 while the dense round is unfinished
    model: dict[str, torch.Tensor] | None
    masks: pruning.Masks | None
    init: dict[str, torch.Tensor]
    rewind: dict[str, torch.Tensor] | None
    rounds: list[dict[str, Any]]
    reinit_model: dict[str, torch.Tensor] | None = None  # this round's reinit branch; kept in its round file only
    partial: dict[str, Any] | None = None  # an unfinished round, see core.checkpoint
    rng: dict[str, Any] | None = None
    labels: dict[str, torch.Tensor] | None = None


class Experiment:
    """One sparse double descent run. `run()` blocks; drive it from a thread to keep a UI live."""

    def __init__(
        self,
        config: ExperimentConfig,
        sink: Sink,
        home: Path,
        preset: str | None = None,
        run_id: str | None = None,
        control: Control | None = None,
        resume: bool = False,
    ):
        self.config = config
        self.sink = sink
        self.home = Path(home)
        self.preset = preset
        self.run_id = run_id or new_run_id()
        self.control = control or Control()
        self.resume = resume
        self.paths = RunPaths(self.home, self.run_id)
        self.current_round = 0
        self.current_epoch = 0
        self.clock = CheckpointClock(config.runtime.checkpoint_every, config.runtime.checkpoint_minutes)
        self._finished: State | None = None  # the last finished round (what a round checkpoint holds)
        self._context: dict[str, Any] = {}  # the unfinished round: round, masks, main_result, main_model
        self._pending: dict[str, Any] | None = None  # the last epoch end's partial round, not yet on disk
        self._labels: dict[str, torch.Tensor] = {}
        self.checkpointed = ""  # where the checkpoint on disk stands, for messages
        self.compiled: dict[int, nn.Module] = {}  # id(model) -> its torch.compile wrapper (runtime.compile)
        self.reinit_model: nn.Module | None = None

    # ------------------------------------------------------------------ events

    def _emit(self, cls, **fields) -> None:
        self.sink(cls(run_id=self.run_id, time=time.time(), **fields))

    def info(self, text: str, level: str = "info") -> None:
        self._emit(Message, level=level, text=text)

    # ------------------------------------------------------------------ top level

    def run(self) -> str:
        """Run to the end; returns the final status. User errors are re-raised after RunEnded(failed)."""
        started = time.perf_counter()
        cfg = self.config
        device = resolve_device(cfg.runtime.device)
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
        state = self._load_checkpoint(device) if self.resume else None
        torch.manual_seed(cfg.runtime.seed)
        data = load_dataset(cfg.data, cfg.noise, self.home, cfg.runtime.seed).to(device)  # bad data dir: no record
        if state is not None:
            self._restore_labels(data, state)
        self._emit(RunStarted, name=cfg.name, preset=self.preset, config=cfg.model_dump(mode="json"),
                   device=str(device), rounds=cfg.prune.rounds, epochs=cfg.train.epochs,
                   host=socket.gethostname(), versions={**library_versions(), **plugin_provenance(cfg)},
                   resumed_from_round=max(state.round, 0) if self.resume and state else -1)
        if self.resume and state is None:
            self.info(f"run {self.run_id} has no checkpoint yet; starting it over", "warning")
        try:
            self._loop(device, data, state)
        except StopRequested:
            self._write_pending_quietly()
            self._end("stopped", started, f"stopped in round {self.current_round} after epoch {self.current_epoch}; "
                                          f"{self._resume_hint()}")
            return "stopped"
        except torch.cuda.OutOfMemoryError:
            self._write_pending_quietly()
            message = (f"GPU out of memory in round {self.current_round} (train.batch_size={cfg.train.batch_size}); "
                       f"finished rounds are kept; start again with --set train.batch_size="
                       f"{max(1, cfg.train.batch_size // 2)}, or free GPU memory and `sdd-tui resume {self.run_id}`")
            self._end("failed", started, message)
            raise SddError(message) from None
        except SddError as error:
            self._write_pending_quietly()
            self._end("failed", started, str(error))
            raise
        except BaseException as error:
            self._write_pending_quietly()
            self._end("failed", started, f"{type(error).__name__}: {error}")
            raise
        self._end("finished", started)
        return "finished"

    def _end(self, status: str, started: float, error: str = "") -> None:
        try:
            if error:
                self.info(error, "error" if status == "failed" else "warning")
            self._emit(RunEnded, status=status, error=error if status == "failed" else "",
                       seconds=time.perf_counter() - started)
        except OSError:  # a full disk or a closed terminal: the record stays `running` and shows `interrupted`
            pass

    def _resume_hint(self) -> str:
        where = self.checkpointed or "nothing yet (resume starts over)"
        return f"checkpoint: {where}; `sdd-tui resume {self.run_id}` continues"

    # ------------------------------------------------------------------ the loop

    def _loop(self, device: torch.device, data: Dataset, state: State | None) -> None:
        cfg = self.config
        if cfg.noise.kind != "none":
            self.info(f"label noise: {cfg.noise.kind}, {int(data.noisy_mask.sum())} of "
                      f"{len(data.y_train)} training labels changed ({data.noise_rate:.1%})")
        self._labels = {"y_train": data.y_train.cpu(), "noisy_mask": data.noisy_mask.cpu()}
        model = self._new_model(data, cfg.runtime.seed, device)
        self._compile(model, data)
        if state is not None and state.partial is None:
            restore_rng(state.rng)  # an unfinished round restores its own, just before training goes on
        if state is None or state.round < 0:
            state = self._dense_round(model, data, state)
            self._checkpoint(state)
        for round_index in range(state.round + 1, cfg.prune.rounds + 1):
            state = self._prune_round(round_index, model, data, state, device)
            self._checkpoint(state)

    def _dense_round(self, model: nn.Module, data: Dataset, state: State | None) -> State:
        cfg = self.config
        partial = state.partial if state else None
        if partial is None:
            masks = pruning.full_masks(model, prunable_names(model, cfg.prune.layers))
            init = snapshot(model)
        else:
            masks, init = partial["masks"], state.init
        self._finished = State(-1, None, None, init, None, [])
        self._context = {"round": 0, "masks": masks, "main_result": None, "main_model": None}
        trainer = self._trainer(model, data, masks, round_index=0)
        rewind_at = min(cfg.retrain.rewind_iteration, trainer.total_iterations)
        if cfg.retrain.rewind_iteration > trainer.total_iterations and partial is None:
            self.info(f"retrain.rewind_iteration={cfg.retrain.rewind_iteration} is past the end of training "
                      f"({trainer.total_iterations} iterations); rewinding to the end", "warning")
        self._start_round(0, masks, trainer, self._resume_iteration(trainer, partial, 0, 0))
        training = self._train(trainer, 0, partial, capture_iteration=rewind_at)
        result = self._finish_round(0, model, data, masks, init, training.epochs, trainer)
        return State(0, snapshot(model), masks, init, training.captured, [result])

    def _prune_round(self, round_index: int, model: nn.Module, data: Dataset, state: State, device) -> State:
        cfg = self.config
        partial = state.partial
        self._finished = state
        model.load_state_dict(state.model)
        masks = partial["masks"] if partial else self._prune(model, data, state.masks, round_index)
        self._context = {"round": round_index, "masks": masks, "main_result": None, "main_model": None}
        mode = cfg.retrain.mode
        trainer = self._trainer(model, data, masks, round_index)
        start, fixed_lr, init = 0, None, state.init
        if mode in ("rewind", "reinit"):
            model.load_state_dict(state.rewind)
            start = min(cfg.retrain.rewind_iteration, trainer.total_iterations)
        elif mode == "lr_rewind":
            start = min(cfg.retrain.rewind_iteration, trainer.total_iterations)
        elif mode == "finetune":
            fixed_lr = cfg.retrain.finetune_lr
        elif mode == "scratch":
            model.load_state_dict(self._new_model(data, self._fresh_seed(round_index), device).state_dict())
            init = snapshot(model)  # learning distance from where this round started, not the dense init
        if partial is not None and partial["branch"] == 1:  # the main branch had finished
            model.load_state_dict(partial["main_model"])
            result = partial["main_result"]
            self._start_round(round_index, masks, trainer, trainer.total_iterations)
        else:
            self._start_round(round_index, masks, trainer, self._resume_iteration(trainer, partial, 0, start))
            training = self._train(trainer, start, partial, fixed_lr=fixed_lr)
            result = self._finish_round(round_index, model, data, masks, init, training.epochs, trainer, emit=False)
        reinit_model = None
        if mode == "reinit" or cfg.retrain.compare_reinit:
            self._context.update(main_result=result, main_model=snapshot(model))
            reinit, reinit_model = self._reinit_branch(round_index, data, masks, device, partial)
            if mode == "reinit":
                result = {**reinit, "round": round_index, "ticket": _branch_summary(result)}
            else:
                result["reinit"] = _branch_summary(reinit)
        self._emit(RoundEnded, round=round_index, rounds=cfg.prune.rounds, result=result)
        return State(round_index, snapshot(model), masks, state.init, state.rewind, [*state.rounds, result],
                     reinit_model)

    def _reinit_branch(self, round_index: int, data: Dataset, masks: pruning.Masks, device,
                       partial: dict[str, Any] | None = None):
        """Same mask, fresh random init, trained from iteration 0: 'winning tickets may not always win'."""
        self.round_started = time.perf_counter()
        model = self._fresh_reinit_model(data, self._fresh_seed(round_index), device)
        init = snapshot(model)
        trainer = self._trainer(model, data, masks, round_index, branch=1)
        training = self._train(trainer, 0, partial, branch=1)
        result = self._finish_round(round_index, model, data, masks, init, training.epochs, trainer, emit=False)
        return result, snapshot(model)

    def _train(self, trainer: Trainer, start: int, partial: dict[str, Any] | None, branch: int = 0,
               fixed_lr: float | None = None, capture_iteration: int | None = None) -> RoundTraining:
        """Train one branch of a round, going on from `partial` (an epoch end) when it belongs to it."""
        optimizer_state, previous, captured = None, [], None
        if partial is not None and partial["branch"] == branch:
            trainer.model.load_state_dict(partial["model"])
            start = self._resume_iteration(trainer, partial, branch, start)
            optimizer_state = partial["optimizer"]
            previous = [EpochStats(**stats) for stats in partial["epochs"]]
            captured = partial["captured"]
            capture_iteration = None if captured is not None else capture_iteration
            self.round_started = time.perf_counter() - partial.get("seconds", 0.0)
            self.info(f"resuming round {partial['round']} at epoch {partial['next_epoch'] + 1} "
                      f"({'reinit branch' if branch else 'main branch'})")
            restore_rng(partial.get("rng"))
        trainer.on_epoch_end = functools.partial(self._epoch_end, trainer.model, branch, previous, captured)
        resumed = {"optimizer_state": optimizer_state} if optimizer_state is not None else {}
        training = trainer.train(start_iteration=start, fixed_lr=fixed_lr, capture_iteration=capture_iteration,
                                 **resumed)
        training.epochs = previous + training.epochs
        if captured is not None:
            training.captured = captured
        return training

    @staticmethod
    def _resume_iteration(trainer: Trainer, partial: dict[str, Any] | None, branch: int, start: int) -> int:
        if partial is not None and partial["branch"] == branch:
            return partial["next_epoch"] * trainer.iterations_per_epoch
        return start

    def _epoch_end(self, model: nn.Module, branch: int, previous: list[EpochStats], captured, epoch: int,
                   optimizer: torch.optim.Optimizer, training: RoundTraining) -> None:
        """Keep this epoch end in memory (a stop writes it) and write it when the clock says so."""
        self._pending = {
            **self._context, "branch": branch, "next_epoch": epoch + 1, "model": snapshot(model),
            "optimizer": optimizer_copy(optimizer),
            "epochs": [dict(vars(stats)) for stats in previous + training.epochs],  # asdict's deep copies are slow
            "captured": captured if captured is not None else training.captured,
            "seconds": time.perf_counter() - self.round_started, "rng": rng_state(),
        }
        if self.clock.epoch_ended():
            self._write_pending()

    def _fresh_seed(self, round_index: int) -> int:
        return self.config.runtime.seed * 1000 + round_index + 1

    def _prune(self, model: nn.Module, data: Dataset, masks: pruning.Masks, round_index: int) -> pruning.Masks:
        cfg = self.config.prune
        generator = torch.Generator().manual_seed(self.config.runtime.seed * 7919 + round_index)
        if cfg.method == "magnitude":
            scores = pruning.magnitude_scores(model, masks)
        elif cfg.method == "random":
            scores = pruning.random_scores(masks, generator)
        else:
            index = torch.randperm(len(data.y_train), generator=generator)[: self.config.train.batch_size]
            index = index.to(data.x_train.device)
            scores = pruning.gradient_scores(model, masks, data.x_train[index], data.y_train[index])
        return pruning.prune_masks(scores, masks, cfg.fraction, cfg.scope)

    # ------------------------------------------------------------------ helpers

    def _new_model(self, data: Dataset, seed: int, device) -> nn.Module:
        model = build_model(self.config.model, data.input_shape, data.num_classes, seed).to(device)
        if device.type == "cuda" and self.config.runtime.fast and data.is_image:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _trainer(self, model, data, masks, round_index: int, branch: int = 0) -> Trainer:
        cfg = self.config
        branch_name = "reinit" if branch else "main"

        def on_epoch(stats: EpochStats) -> None:
            self.current_epoch = stats.epoch + 1
            self._emit(EpochEnded, round=round_index, rounds=cfg.prune.rounds, epoch=stats.epoch + 1,
                       epochs=cfg.train.epochs, train_loss=stats.train_loss, train_acc=stats.train_acc,
                       test_loss=stats.test_loss, test_acc=stats.test_acc, lr=stats.lr, seconds=stats.seconds,
                       samples_per_s=stats.samples_per_s, branch=branch_name)

        return Trainer(model, data, cfg.train, masks, self.control, amp=cfg.runtime.fast, round_index=round_index,
                       seed=cfg.runtime.seed, branch=branch, on_epoch=on_epoch, fast=cfg.runtime.fast,
                       forward=self.compiled.get(id(model)))

    def _compile(self, model: nn.Module, data: Dataset) -> None:
        """With runtime.compile: compile `model` once; every round reuses it (masks change values only)."""
        if not self.config.runtime.compile:
            return
        if not self.config.runtime.fast:
            self.info("runtime.compile is ignored on the slow path (runtime.fast=false): it trains eagerly", "warning")
            return
        masks = pruning.full_masks(model, [])
        autocast = self._trainer(model, data, masks, round_index=0).autocast()
        count = self.config.train.batch_size
        try:
            compiled, seconds = compile_model(model, data.x_train[:count], data.y_train[:count], autocast)
        except Exception as error:  # a missing C++ compiler or an unsupported op must not cost the run
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            self.info(f"torch.compile failed ({type(error).__name__}: {reason}); training eagerly; "
                      f"--set runtime.compile=false hides this", "warning")
            return
        self.compiled[id(model)] = compiled
        self.info(f"torch.compile: model compiled in {seconds:.1f} s; every round reuses it")

    def _fresh_reinit_model(self, data: Dataset, seed: int, device) -> nn.Module:
        """A freshly initialised model for the reinit branch; one module (compiled once) when compiling."""
        fresh = self._new_model(data, seed, device)
        if not (self.config.runtime.compile and self.config.runtime.fast):
            return fresh
        if self.reinit_model is None:
            self.reinit_model = fresh
            self._compile(fresh, data)
        else:
            self.reinit_model.load_state_dict(fresh.state_dict())
        return self.reinit_model

    def _start_round(self, round_index: int, masks, trainer: Trainer, start_iteration: int = 0) -> None:
        self.current_round = round_index
        self.round_started = time.perf_counter()
        self._emit(RoundStarted, round=round_index, rounds=self.config.prune.rounds,
                   sparsity=pruning.sparsity(masks), remaining=pruning.remaining(masks),
                   epochs=self.config.train.epochs, start_epoch=start_iteration // trainer.iterations_per_epoch)

    def _finish_round(self, round_index, model, data, masks, init, epochs: list[EpochStats], trainer: Trainer,
                      emit: bool = True) -> dict[str, Any]:
        metrics = round_metrics(model, data, self.config.train.eval_batch_size, trainer.autocast())
        last = epochs[-1] if epochs else None
        best = max(epochs, key=lambda e: e.test_acc) if epochs else None
        result = {
            "round": round_index,
            "sparsity": pruning.sparsity(masks),
            "remaining": pruning.remaining(masks),
            "total": pruning.total(masks),
            "test_acc": last.test_acc if last else None,
            "test_loss": last.test_loss if last else None,
            "best_test_acc": best.test_acc if best else None,
            "best_epoch": best.epoch + 1 if best else None,
            "train_acc": metrics["train_acc"],
            "train_loss": metrics["train_loss"],
            "noisy_memorized": _finite_or_none(metrics["noisy_memorized"]),
            "noisy_true_acc": _finite_or_none(metrics["noisy_true_acc"]),
            "learning_distance": learning_distance(model, init, masks) if self.config.analysis.learning_distance else None,
            "seconds": time.perf_counter() - self.round_started,
        }
        if emit:
            self._emit(RoundEnded, round=round_index, rounds=self.config.prune.rounds, result=result)
        return result

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self, state: State) -> None:
        """After a round: the finished state, nothing unfinished."""
        self._pending = None
        weights = {"round": state.round, "model": state.model, "masks": state.masks, "result": state.rounds[-1]}
        if state.reinit_model is not None:
            weights["reinit_model"] = state.reinit_model
        write_checkpoint(weights, self.paths.round_file(state.round), f"round {state.round}", self.run_id)
        write_checkpoint(self._payload(state, None), self.paths.checkpoint, f"round {state.round}", self.run_id)
        self.clock.mark()
        self.checkpointed = f"end of round {state.round}"

    def _write_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        where = f"round {pending['round']} epoch {pending['next_epoch']}" + (" (reinit branch)" if pending["branch"] else "")
        write_checkpoint(self._payload(self._finished, pending), self.paths.checkpoint, where, self.run_id)
        self.clock.mark()
        self.checkpointed = where

    def _write_pending_quietly(self) -> None:
        """On a stop or a failure: save the last epoch end if it is newer than the checkpoint on disk."""
        try:
            self._write_pending()
        except Exception as error:  # the run is ending anyway; say so instead of hiding the first error
            try:
                self.info(str(error), "warning")
            except OSError:
                pass

    def _payload(self, state: State, partial: dict[str, Any] | None) -> dict[str, Any]:
        return {"round": state.round, "model": state.model, "masks": state.masks, "init": state.init,
                "rewind": state.rewind, "rounds": state.rounds, "partial": partial, "labels": self._labels,
                "rng": partial["rng"] if partial else rng_state(), "config": self.config.model_dump(mode="json")}

    def _load_checkpoint(self, device) -> State | None:
        """The saved state, or None (with a message) when the run was stopped before its first checkpoint."""
        path = self.paths.checkpoint
        if not path.exists():
            return None
        payload = read_checkpoint(path, device, self.run_id)
        return State(payload["round"], payload["model"], payload["masks"], payload["init"], payload["rewind"],
                     payload["rounds"], partial=payload.get("partial"), rng=payload.get("rng"),
                     labels=payload.get("labels"))

    def _restore_labels(self, data: Dataset, state: State) -> None:
        """Train on the checkpoint's noisy labels, the ones the finished rounds saw."""
        if not state.labels:
            return
        saved = state.labels["y_train"]
        if saved.shape != data.y_train.shape:
            raise SddError(f"run {self.run_id}: the training set has {len(data.y_train)} samples but the checkpoint "
                           f"has {len(saved)}; restore the data it was started with, or start a new run")
        data.y_train = saved.to(data.y_train.device)
        data.noisy_mask = state.labels["noisy_mask"].to(data.noisy_mask.device)


def _branch_summary(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("test_acc", "best_test_acc", "train_acc", "noisy_memorized", "noisy_true_acc", "learning_distance",
            "test_loss", "seconds")
    return {k: result.get(k) for k in keys}

