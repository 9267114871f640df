"""A run's checkpoints: when to write one, the last epoch end not yet on disk, writing without losing
the last one, and reading one back without running code from the file.

A checkpoint (runs/<id>/checkpoint.pt) is one `torch.save`d dict, written atomically (temporary
file, fsync, rename); core.engine.run_state.State types it:
    round      the last finished round (-1 while the dense round is unfinished)
    model, masks, init, rewind, rounds   the state after that round
    labels     the noisy training labels and which samples are noisy
    rng        RNG states of torch (CPU and CUDA), Python and NumPy
    partial    None, or an unfinished round (core.engine.run_state.PartialRound): round, branch (main or
               reinit), next_epoch, model, optimizer, masks, epochs (EpochStats as dicts), captured
               (rewind weights of round 0), main_result and main_model (when the reinit branch is
               under way), seconds spent so far, rng
    config     the run's configuration, as JSON data
    dense      prune.schedule=oneshot: the trained dense weights every round prunes (else None)
Each finished round also leaves runs/<id>/rounds/round-<r>.pt: round, model, masks, result and
(with a reinit branch) reinit_model.
"""

from __future__ import annotations

import contextlib
import errno
import pickle
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import SddError
from ..paths import RunPaths
from .run_state import Labels, PartialRound, State, round_weights_from_payload, state_from_payload
from .training import Branch

if TYPE_CHECKING:
    from ..config import ExperimentConfig
    from ..data.datasets import Dataset


class CheckpointFailed(SddError):
    """A checkpoint could not be written (full disk, no permission); the previous one is intact."""


class CheckpointClock:
    """Says whether an epoch end should write a checkpoint: every N epochs, or M minutes after the last."""

    def __init__(self, every_epochs: int, every_minutes: float):
        self.every_epochs = every_epochs
        self.every_seconds = every_minutes * 60.0
        self.mark()

    def mark(self) -> None:
        """A checkpoint was just written."""
        self.epochs = 0
        self.written_at = time.monotonic()

    def epoch_ended(self) -> bool:
        self.epochs += 1
        by_epochs = self.every_epochs > 0 and self.epochs >= self.every_epochs
        by_time = self.every_seconds > 0 and time.monotonic() - self.written_at >= self.every_seconds
        return by_epochs or by_time


class Checkpointer:
    """Writes and reads one run's checkpoints; keeps the last epoch end in memory until its clock says so."""

    def __init__(self, paths: RunPaths, config: ExperimentConfig):
        self.paths = paths
        self.config = config
        self.clock = CheckpointClock(config.runtime.checkpoint_every, config.runtime.checkpoint_minutes)
        self.finished: State | None = None  # the last finished round: what an epoch end's checkpoint adds to
        self.pending: PartialRound | None = None  # the last epoch end, not yet on disk
        self.labels: Labels | None = None
        self.where = ""  # where the checkpoint on disk stands, for messages

    @property
    def run_id(self) -> str:
        return self.paths.run_id

    def round_ended(self, state: State) -> None:
        """After a round: its round file, and a checkpoint of the finished state with nothing unfinished."""
        self.pending = None
        weights = {"round": state.round, "model": state.model, "masks": state.masks, "result": state.rounds[-1]}
        if state.reinit_model is not None:
            weights["reinit_model"] = state.reinit_model
        write_checkpoint(weights, self.paths.round_file(state.round), f"round {state.round}", self.run_id)
        self._write(state.to_payload(None, self.labels, self._config_data()), f"round {state.round}")

    def epoch_ended(self, partial: PartialRound) -> None:
        """Keep this epoch end in memory (a stop writes it) and write it when the clock says so."""
        self.pending = partial
        if self.clock.epoch_ended():
            self.write_pending()

    def write_pending(self) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return
        where = f"round {pending.round} epoch {pending.next_epoch}" + (
            " (reinit branch)" if pending.branch is Branch.REINIT else "")
        self._write(self.finished.to_payload(pending, self.labels, self._config_data()), where)

    def write_pending_quietly(self, warn: Callable[[str], None]) -> None:
        """On a stop or a failure: save the last epoch end if it is newer than the checkpoint on disk."""
        try:
            self.write_pending()
        except Exception as error:  # the run is ending anyway; say so instead of hiding the first error
            try:
                warn(str(error))
            except OSError:
                pass

    def resume_hint(self) -> str:
        where = self.where or "nothing yet (resume starts over)"
        return f"checkpoint: {where}; `sdd-tui resume {self.run_id}` continues"

    def load(self, device: torch.device) -> State | None:
        """The saved state, or None when the run was stopped before its first checkpoint."""
        path = self.paths.checkpoint
        if not path.exists():
            return None
        return read_checkpoint(path, device, self.run_id)

    def restore_labels(self, data: Dataset, state: State) -> None:
        """Train on the checkpoint's noisy labels, the ones the finished rounds saw."""
        restore_labels(data, state, self.run_id)

    def _write(self, payload: dict[str, Any], where: str) -> None:
        write_checkpoint(payload, self.paths.checkpoint, where, self.run_id)
        self.clock.mark()
        self.where = where

    def _config_data(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")


def write_checkpoint(payload: dict[str, Any], path: Path, where: str, run_id: str) -> None:
    """Write atomically; on failure raise CheckpointFailed naming the fix (the old file is untouched)."""
    from ..atomic import atomic_save

    try:
        atomic_save(payload, path)
    except OSError as error:
        reason = "the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else (error.strerror or str(error))
        raise CheckpointFailed(
            f"checkpoint of {where} not written to {path.parent} ({reason}); the previous checkpoint is intact; "
            f"free space there, then `sdd-tui resume {run_id}`"
        ) from None


def read_checkpoint(path: Path, device: torch.device, run_id: str) -> State:
    fix = f"move it aside, then `sdd-tui resume {run_id}` starts the run over (or start a new run)"
    payload = load_plain(path, device, "checkpoint", fix)
    try:
        return state_from_payload(payload)
    except ValueError as error:
        raise SddError(f"{path} is not a checkpoint sdd-tui wrote ({error}); {fix}") from None


def read_round_file(path: Path, device: torch.device) -> dict[str, Any]:
    """A round file's dict, checked: round, model, masks, result and maybe reinit_model."""
    fix = "move it aside and analyze other rounds, or run the experiment again"
    payload = load_plain(path, device, "round file", fix)
    try:
        round_weights_from_payload(payload)
    except ValueError as error:
        raise SddError(f"{path} is not a round file sdd-tui wrote ({error}); {fix}") from None
    return payload


def load_plain(path: Path, device: torch.device, what: str, fix: str) -> Any:
    """torch.load that runs no code from the file: only tensors, numbers, strings and containers come back.

    Checkpoints of the first format also hold NumPy's RNG state as a uint32 array: those types are
    allowed here, and only here.
    """
    try:
        with _allowing(_numpy_rng_globals()):
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        refused = re.search(r"GLOBAL (\S+)|but got <class '([^']+)'>", str(error))
        if refused is None:
            raise SddError(f"{what} {path} is unreadable (UnpicklingError); {fix}") from None
        name = refused.group(1) or refused.group(2)
        raise SddError(f"{path} is not a {what} sdd-tui wrote (it asks to run {name}); {fix}") from None
    except Exception as error:  # a truncated or foreign file: torch raises several types
        raise SddError(f"{what} {path} is unreadable ({type(error).__name__}); {fix}") from None


def _allowing(globals_: list):
    """Allow these globals in weights_only loads: within a block (torch >= 2.5) or from now on (torch 2.4,
    which has no scoped form; they are plain data types, never code)."""
    scoped = getattr(torch.serialization, "safe_globals", None)
    if scoped is not None:
        return scoped(globals_)
    torch.serialization.add_safe_globals(globals_)
    return contextlib.nullcontext()


def _numpy_rng_globals() -> list:
    """What unpickling numpy.random.get_state()'s key array needs (the first checkpoint format)."""
    try:
        import numpy
    except ImportError:
        return []
    multiarray = getattr(numpy, "_core", None) or numpy.core  # NumPy 2 moved numpy.core to numpy._core
    return [multiarray.multiarray._reconstruct, numpy.ndarray, numpy.dtype, numpy.dtypes.UInt32DType]


def restore_labels(data: Dataset, state: State, run_id: str) -> None:
    """Put a checkpoint's noisy labels (if it has them) into `data`: those its run's rounds trained on."""
    if not state.labels:
        return
    saved = state.labels["y_train"]
    if saved.shape != data.y_train.shape:
        raise SddError(f"run {run_id}: the training set has {len(data.y_train)} samples but the checkpoint "
                       f"has {len(saved)}; restore the data it was started with, or start a new run")
    data.y_train = saved.to(data.y_train.device)
    data.noisy_mask = state.labels["noisy_mask"].to(data.noisy_mask.device)
