"""Where a pruned round starts, per retrain mode: one row of a table each.

rewind     the surviving weights and the LR schedule go back to iteration t of the dense run
reinit     as rewind; the round reports a fresh random init with the same mask (the ticket kept aside)
lr_rewind  the trained weights stay; the LR schedule replays from iteration t
finetune   the trained weights stay; train at a fixed retrain.finetune_lr
scratch    a fresh random init each round, its learning distance measured from there
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the table is read by the sweep driver (core.engine.cohort_plan), which needs no torch
    import torch

Weights = dict[str, "torch.Tensor"]


class StartWeights(Enum):
    REWIND = "rewind"  # the rewind snapshot: iteration t of the dense round
    TRAINED = "trained"  # what the last round ended with
    FRESH = "fresh"  # a fresh random init, seeded by the round


@dataclass(frozen=True)
class RetrainRule:
    weights: StartWeights
    rewind_schedule: bool = False  # start the LR schedule at retrain.rewind_iteration (else at 0)
    fixed_lr: bool = False  # train at retrain.finetune_lr instead of following the schedule
    distance_from_round_start: bool = False  # learning distance from the round's own init, not the dense one
    reports_reinit: bool = False  # the round's result is the reinit branch's


RETRAIN_MODES: dict[str, RetrainRule] = {
    "rewind": RetrainRule(StartWeights.REWIND, rewind_schedule=True),
    "reinit": RetrainRule(StartWeights.REWIND, rewind_schedule=True, reports_reinit=True),
    "lr_rewind": RetrainRule(StartWeights.TRAINED, rewind_schedule=True),
    "finetune": RetrainRule(StartWeights.TRAINED, fixed_lr=True),
    "scratch": RetrainRule(StartWeights.FRESH, distance_from_round_start=True),
}


@dataclass(frozen=True)
class RoundStart:
    iteration: int
    fixed_lr: float | None
    weights: Weights | None  # to load before training; None: keep the trained ones


class RetrainSettings(Protocol):
    """What a round start reads of core.config's RetrainConfig (not imported: config validates retrain.mode
    against this module's table)."""

    mode: str
    rewind_iteration: int
    finetune_lr: float


def round_start(config: RetrainSettings, total_iterations: int, rewind: Weights | None,
                fresh: Callable[[], Weights]) -> RoundStart:
    """Where this config's retrain mode starts a pruned round; `fresh()` builds a fresh init when asked."""
    mode = RETRAIN_MODES[config.mode]
    sources = {StartWeights.REWIND: lambda: rewind, StartWeights.TRAINED: lambda: None, StartWeights.FRESH: fresh}
    iteration = min(config.rewind_iteration, total_iterations) if mode.rewind_schedule else 0
    return RoundStart(iteration, config.finetune_lr if mode.fixed_lr else None, sources[mode.weights]())
