"""One run context: a run's process-wide torch settings, applied when it starts and undone when it ends.

torch's thread count, its cuDNN and matmul flags and its global random generators belong to the whole
process. A run inside another program (the app, a notebook, a test) must not leave them changed, so
every place that trains enters `run_context(threads=..., seed=...)`: it applies the run's thread count
and seed, and on the way out puts back what the process had. Whatever the run changes inside (the fast
Trainer turns on `cudnn.benchmark`; a resumed round restores its checkpoint's random states) is undone too.

Contexts may overlap: the members of a packed cohort each run in their own thread, and the cohort's
driving thread sets its own thread count for a packed step. The settings in force are always those of
the newest context; when one ends out of order, the next newer context takes over what it saved, so
when the last one ends the process has exactly the settings it had before the first began. The random
states are put back only then: the runs still open go on drawing from them.

OpenMP's waiting policy is read once, when torch loads libgomp, so no context can change it: the
program's entry point sets it before torch is imported (core/engine/openmp.py, called by `sdd_tui.cli.main`,
which the spawned `python -m sdd_tui` processes run too). A library import never sets it.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class _Saved:
    """The process-wide settings a context found when it began."""

    threads: int
    cudnn: tuple[bool, bool, bool]  # benchmark, deterministic, allow_tf32
    matmul: tuple[bool, str]  # cuda.matmul.allow_tf32, float32 matmul precision
    rng: dict[str, Any]


def _cudnn_flags() -> tuple[bool, bool, bool]:
    cudnn = torch.backends.cudnn
    return cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_initialized():  # asking an uninitialised CUDA for its states would initialise it
        states["cuda"] = torch.cuda.get_rng_state_all()
    if "numpy" in sys.modules:  # a resumed round restores numpy's state: numpy is loaded by then
        states["numpy"] = sys.modules["numpy"].random.get_state()
    return states


def _save() -> _Saved:
    return _Saved(torch.get_num_threads(), _cudnn_flags(),
                  (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()), _rng_states())


def _restore_settings(saved: _Saved) -> None:
    if torch.get_num_threads() != saved.threads:
        torch.set_num_threads(saved.threads)
    cudnn = torch.backends.cudnn
    cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32 = saved.cudnn
    torch.backends.cuda.matmul.allow_tf32 = saved.matmul[0]
    torch.set_float32_matmul_precision(saved.matmul[1])


def _restore_rng(saved: _Saved) -> None:
    torch.set_rng_state(saved.rng["torch"])
    random.setstate(saved.rng["python"])
    if "cuda" in saved.rng and len(saved.rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(saved.rng["cuda"])
    if "numpy" in saved.rng:
        sys.modules["numpy"].random.set_state(saved.rng["numpy"])


_lock = threading.Lock()
_open: list[list[_Saved]] = []  # the contexts now open, oldest first; each holds what it saved (a box)


def open_contexts() -> int:
    """How many run contexts are open in this process (0 outside any run)."""
    with _lock:
        return len(_open)


@contextmanager
def run_context(threads: int | None = None, seed: int | None = None) -> Iterator[None]:
    """Apply a run's torch thread count and global seed (each when given) until the block ends, then put
    back the threads, cuDNN and matmul flags and random states the process had before."""
    with _lock:
        box = [_save()]
        _open.append(box)
        if threads:
            torch.set_num_threads(threads)
        if seed is not None:
            torch.manual_seed(seed)
    try:
        yield
    finally:
        with _lock:
            index = next(i for i, open_box in enumerate(_open) if open_box is box)
            del _open[index]
            if index < len(_open):  # an older context ends while a newer one runs: the newer inherits its past
                _open[index][0] = box[0]
            else:
                _restore_settings(box[0])
                if not _open:  # the random states only when no run is left: the others still draw from them
                    _restore_rng(box[0])
