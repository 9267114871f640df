"""Checkpoint helpers: when to write one, the RNG states it carries, and writing it without losing the last.

A checkpoint is one `torch.save`d dict, written atomically (temporary file, fsync, rename):
    round      the last finished round (-1 while the dense round is unfinished)
    model, masks, init, rewind, rounds   the state after that round
    labels     the noisy training labels and which samples are noisy
    rng        RNG states of torch (CPU and CUDA), Python and NumPy
    partial    None, or an unfinished round: round, branch, next_epoch, model, optimizer, masks,
               epochs (EpochStats as dicts), captured (rewind weights of round 0), main_result and
               main_model (when the reinit branch is under way), seconds spent so far
    config     the run's configuration, as JSON data
"""

from __future__ import annotations

import copy
import errno
import random
import time
from pathlib import Path
from typing import Any

import torch

from core.errors import SddError


class CheckpointFailed(SddError):
    """A checkpoint could not be written (full disk, no permission); the previous one is intact."""


def rng_state() -> dict[str, Any]:
    """The state of every global generator in use (the engine's own generators are seeded per epoch)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy

        state["numpy"] = numpy.random.get_state()
    except ImportError:  # numpy is optional for the engine
        pass
    return state


def restore_rng(state: dict[str, Any] | None) -> None:
    if not state:
        return
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "numpy" in state:
        import numpy

        numpy.random.set_state(state["numpy"])


def optimizer_copy(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A copy of the optimizer's state: training goes on mutating the live buffers in place.

    Tensors are cloned one by one: `copy.deepcopy` of a state dict costs tens of milliseconds.
    """
    state = optimizer.state_dict()
    tensors = {key: {name: value.clone() if torch.is_tensor(value) else value for name, value in entry.items()}
               for key, entry in state["state"].items()}
    return {"state": tensors, "param_groups": copy.deepcopy(state["param_groups"])}


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


def write_checkpoint(payload: dict[str, Any], path: Path, where: str, run_id: str) -> None:
    """Write atomically; on failure raise CheckpointFailed naming the fix (the old file is untouched)."""
    from core.store import atomic_save

    try:
        atomic_save(payload, path)
    except OSError as error:
        reason = "the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else (error.strerror or str(error))
        raise CheckpointFailed(
            f"checkpoint of {where} not written to {path.parent} ({reason}); the previous checkpoint is intact; "
            f"free space there, then `sdd-tui resume {run_id}`"
        ) from None


def read_checkpoint(path: Path, device: torch.device, run_id: str) -> dict[str, Any]:
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # a truncated or foreign file: torch raises several types
        raise SddError(
            f"checkpoint {path} is unreadable ({type(error).__name__}); move it away and run "
            f"`sdd-tui resume {run_id}` to start the run over"
        ) from None
