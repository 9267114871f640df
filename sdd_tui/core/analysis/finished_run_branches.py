"""Branches of a finished run, trained afterwards from its stored rounds (`sdd-tui branch ID KIND --rounds`),
as the official code runs `lottery_branch randomly_reinitialize` and `randomly_prune` on a lottery run
(the reinit branch a run trains beside each round as it goes is core.engine.round_branches):

reinit        the round's masks, a fresh random init (the seed `retrain.compare_reinit` uses), trained
              from iteration 0 as compare_reinit trains its branch: the same numbers on the same device
random-prune  random masks with the round's per-layer sparsity (each layer's mask shuffled), the rest as
              the run's retrain mode starts the round (rewind: the dense run's weights at iteration t);
              start `official` (default): those weights times the round's own (ticket's) masks, as the
              official branch loads the level's saved start, so random-mask weights outside the ticket
              start at 0; start `dense`: those weights unmasked

A round's branch result is stored as compare_reinit stores its own: a summary under the round's
`reinit` or `random_prune` key in rounds.json (core.analysis.results reads branches there; plots draw them
dashed), its trained weights (and random masks) in the round file. Each round is stored as soon as it
is trained, so a stopped command keeps the rounds it finished; rounds that have the branch are
skipped unless asked again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import seeds
from ..config import ExperimentConfig
from ..data.datasets import Dataset, batches_per_epoch, load_dataset
from ..engine import pruning
from ..engine.checkpoint import read_checkpoint, read_round_file, restore_labels, write_checkpoint
from ..engine.round_result import branch_summary, round_result
from ..engine.run_models import RunModels
from ..engine.run_state import State
from ..engine.training import Branch, Control, EpochStats, Trainer, autocast_for, snapshot
from ..errors import SddError
from ..format import pct, sparsity_pct
from ..history.records import RunRecord
from ..paths import RunPaths
from ..retrain import RETRAIN_MODES, round_start

Say = Callable[[str], None]


@dataclass(frozen=True)
class BranchKind:
    """How a branch of a finished round differs from the round itself."""

    key: str  # where its result goes in the round, and its weights in the round file (`<key>_model`)
    stream: Branch  # its data order: the reinit branch's own, or the round's (random prune: only masks differ)
    fresh_init: bool  # a fresh random init from iteration 0 (else where the retrain mode starts the round)
    random_masks: bool  # the round's masks shuffled within each layer (else the round's own)


BRANCH_KINDS = {
    "reinit": BranchKind("reinit", Branch.REINIT, fresh_init=True, random_masks=False),
    "random-prune": BranchKind("random_prune", Branch.MAIN, fresh_init=False, random_masks=True),
}


@dataclass
class StoredRun:
    """What a branch needs of a finished run: its config, data (with the run's noisy labels), models,
    final state (init, rewind weights) and rounds."""

    run_id: str
    paths: RunPaths
    config: ExperimentConfig
    data: Dataset
    models: RunModels
    state: State
    rounds: dict[int, dict[str, Any]]


RANDOM_PRUNE_STARTS = ("official", "dense")  # the weights a random-prune branch starts from (first: default)


def check_start(start: str) -> str:
    if start not in RANDOM_PRUNE_STARTS:
        raise SddError(f"--start {start!r}: use official (the round's start weights times the ticket's masks, as "
                       f"the official randomly_prune) or dense (those weights unmasked)")
    return start


def branch_kind(name: str) -> BranchKind:
    if name not in BRANCH_KINDS:
        raise SddError(f"unknown branch {name!r}; use {' or '.join(BRANCH_KINDS)}")
    return BRANCH_KINDS[name]


def open_run(record: RunRecord, home: Path, device: torch.device, say: Say) -> StoredRun:
    """The run's data (with the noisy labels it trained on), models and final checkpoint; SddError naming the fix."""
    config = record.experiment_config()
    paths = RunPaths(home, record.id)
    if not paths.checkpoint.exists():
        raise SddError(f"run {record.id} has no checkpoint.pt in {paths.dir}; a branch needs its noisy labels "
                       f"and rewind weights")
    state = read_checkpoint(paths.checkpoint, device, record.id)
    data = load_dataset(config.data, config.noise, Path(home), config.runtime.seed,
                        config.runtime.seed_scheme).to(device)
    restore_labels(data, state, record.id)  # the noisy labels its rounds trained on
    models = RunModels(config, data, device, lambda text, level="info": say(text))
    return StoredRun(record.id, paths, config, data, models, state, {r["round"]: r for r in record.rounds})


def rounds_to_branch(run: StoredRun, kind: BranchKind, wanted: list[int] | None, again: bool,
                     say: Say) -> list[int]:
    """The rounds to train: `wanted` (default every pruned round), each with a result and a round file."""
    if kind.key == "reinit" and run.config.retrain.mode == "reinit":
        raise SddError(f"run {run.run_id} already reports the reinit branch (retrain.mode=reinit; the ticket "
                       f"is under 'ticket'); branch it with random-prune")
    pruned = sorted(r for r in run.rounds if r > 0)
    if not pruned:
        raise SddError(f"run {run.run_id} has no pruned round yet; branches start at round 1")
    chosen = wanted if wanted is not None else pruned
    if 0 in chosen:
        raise SddError("--rounds: round 0 is the dense network; branches start at round 1")
    missing = [r for r in chosen if r not in run.rounds or not run.paths.round_file(r).exists()]
    if missing:
        raise SddError(f"--rounds: run {run.run_id} has no stored round {missing[0]}; rounds stored: "
                       f"{', '.join(map(str, pruned))}")
    done = [r for r in chosen if isinstance(run.rounds[r].get(kind.key), dict)]
    if done and not again:
        say(f"round(s) {', '.join(map(str, done))} already have a {kind.key} branch; skipped (--again retrains them)")
        chosen = [r for r in chosen if r not in done]
    return chosen


def _start(run: StoredRun, kind: BranchKind, index: int):
    """(weights to start from, start iteration, fixed LR, init the learning distance is measured from)."""
    models = run.models
    if kind.fresh_init:  # the reinit branch: as core.engine.experiment trains it with retrain.compare_reinit
        weights = models.new(models.fresh_seed(index)).state_dict()
        return weights, 0, None, None
    return round_start_of(run, index)


def round_start_of(run: StoredRun, index: int):
    """Where round `index` itself started (the retrain mode's weights, unmasked; iteration; fixed LR; the init
    its learning distance is measured from, None: the start weights)."""
    cfg, models = run.config, run.models
    total = batches_per_epoch(len(run.data.y_train), cfg.train.batch_size) * cfg.train.epochs
    start = round_start(cfg.retrain, total, run.state.rewind,
                        lambda: models.new(models.fresh_seed(index)).state_dict())
    weights = start.weights if start.weights is not None else _trained_before(run, index)
    init = None if RETRAIN_MODES[cfg.retrain.mode].distance_from_round_start else run.state.init
    return weights, start.iteration, start.fixed_lr, init


def _trained_before(run: StoredRun, index: int) -> dict[str, torch.Tensor]:
    """The weights a round that keeps the trained ones starts from: the last round's, or one-shot the dense
    network's (kept in the checkpoint, also by a run that reused another run's dense round)."""
    if run.state.dense is not None:
        return run.state.dense
    return read_round_file(run.paths.round_file(index - 1), run.data.x_train.device)["model"]


def ticket_start(weights: dict[str, torch.Tensor], ticket: pruning.Masks) -> dict[str, torch.Tensor]:
    """The official random-prune start: the round's start weights times the ticket's masks (open_lth saves
    the level's PrunedModel, weights x mask, at train_start_step, and randomly_prune loads that)."""
    return {name: tensor * ticket[name].to(tensor) if name in ticket else tensor
            for name, tensor in weights.items()}


def train_finished_branch(run: StoredRun, kind: BranchKind, index: int, control: Control,
                 on_epoch: Callable[[EpochStats], None] | None = None,
                 start: str = RANDOM_PRUNE_STARTS[0]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one round's branch; returns (its summary, the round file's new entries). `start` is the
    random-prune branch's (RANDOM_PRUNE_STARTS)."""
    cfg, device = run.config, run.data.x_train.device
    stored = read_round_file(run.paths.round_file(index), device)
    masks = stored["masks"]
    weights, iteration, fixed_lr, init = _start(run, kind, index)
    if kind.random_masks:
        runtime = cfg.runtime
        generator = seeds.generator(runtime.seed, seeds.Purpose.RANDOM_MASKS, index, scheme=runtime.seed_scheme)
        if check_start(start) == "official":
            weights = ticket_start(weights, masks)
        masks = pruning.shuffled_masks(masks, generator)
    model = run.models.new(run.models.init_seed())
    model.load_state_dict(weights)
    init = snapshot(model) if init is None else init
    started = time.perf_counter()
    trainer = Trainer(model, run.data, cfg.train, masks, control, amp=cfg.runtime.mixed_precision, round_index=index,
                      seed=cfg.runtime.seed, branch=kind.stream, on_epoch=on_epoch, fast=cfg.runtime.fast)
    training = trainer.train(start_iteration=iteration, fixed_lr=fixed_lr)
    result = round_result(index, model, run.data, masks, init if cfg.analysis.learning_distance else None,
                          training.epochs, started, cfg.train.eval_batch_size,
                          autocast_for(device, cfg.runtime.mixed_precision))
    entries = {f"{kind.key}_model": snapshot(model)}
    summary = branch_summary(result)
    if kind.random_masks:
        entries[f"{kind.key}_masks"] = masks
        summary["start"] = start
    return summary, entries


def store_branch(store, run: StoredRun, kind: BranchKind, index: int, summary: dict[str, Any],
                 entries: dict[str, Any]) -> None:
    """The round's result with the branch under its key (rounds.json), and its weights in the round file.
    Both are read again and written under the run's lock: another `sdd-tui branch` on the same run may have
    stored its own branch of this round since this one read it, and both must stay."""
    folder = store.folder(run.run_id)
    with folder.locked():
        path = run.paths.round_file(index)
        payload = read_round_file(path, torch.device("cpu"))
        payload.update({key: _to_cpu(value) for key, value in entries.items()})
        payload["result"] = {**payload.get("result", {}), kind.key: summary}
        write_checkpoint(payload, path, f"round {index}", run.run_id)
        run.rounds[index] = folder.set_round_fields(index, {kind.key: summary})


def _to_cpu(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu() for name, tensor in weights.items()}


def branch_line(index: int, kind: BranchKind, summary: dict[str, Any], result: dict[str, Any]) -> str:
    """`round 5 (67.23% sparse): random_prune test 71.2%, train 80.1% (the round: test 75.0%), 12.3 s`."""
    return (f"round {index} ({sparsity_pct(result.get('sparsity'))} sparse): {kind.key} test "
            f"{pct(summary.get('test_acc'))}, train {pct(summary.get('train_acc'))} (the round: test "
            f"{pct(result.get('test_acc'))}), {summary.get('seconds') or 0:.1f} s")
