"""Minima flatness: re-dense training, 1-D linear interpolation, 1-D filter-normalised loss plots.

For a stored round (runs/<id>/rounds/round-<r>.pt: trained weights and masks):
- re-dense (default, short): the pruned weights are restored at 0 (they already are) and the whole
  network trains `epochs` more epochs at the last LR of the sparse round (fixed LR, no masks, a fresh
  optimizer);
- re-dense, official procedure (`official=True`, the official `lottery_branch retrain` with
  `training_steps = 2T` and `regain_pruned_weights_steps = T`): the ticket is retrained from the round's
  start (the rewind point, masked) to the end of its schedule, T - t iterations, which gives the sparse
  end; then the pruned weights come back at 0 and the whole network trains T more epochs, the schedule
  going on (its last LR) with the same optimizer, so momentum carries over;
- interpolation: w(a) = (1 - a) w_sparse + a w_redense for a in [0, 1] (`steps` points, 101 = step
  0.01), with train loss/accuracy (on the noisy training labels the network was trained on) and test
  loss/accuracy at each point. Batch-norm running statistics are interpolated like the weights by
  default, so both endpoints are exactly the stored networks (integer buffers come from the nearer
  endpoint); with `bn="recompute"` they are recomputed at every point instead, from a forward pass in
  train mode over the (un-augmented) training inputs, or `bn_samples` of them (torch's `update_bn`:
  the average of the batches' statistics), so every point is judged with statistics of its own weights;
- filter-normalised 1-D loss plot (Li et al. 2018): one Gaussian direction d, each filter (each
  output row of a weight) rescaled to the norm of the same filter of w, biases and batch-norm
  parameters left out (d = 0); loss along w + b d for b in [-1, 1]. Around the sparse solution the
  direction is masked, so the plot stays in the sparse subspace.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ExperimentConfig
from ..data.datasets import Dataset, batches_per_epoch, subset_order
from ..engine.checkpoint import read_round_file
from ..engine.runtime_context import run_context
from ..engine.training import Branch, Control, Trainer, evaluate, lr_at, snapshot
from ..errors import SddError
from ..history.records import RunRecord
from ..paths import RunPaths
from ..retrain import RETRAIN_MODES
from ..seeds import Purpose, generator, stream_seed
from .redense_options import RedenseOptions

Progress = Callable[[str], None]


def available_rounds(paths: RunPaths) -> list[int]:
    folder = paths.rounds_dir
    found = [p.stem.removeprefix("round-") for p in folder.glob("round-*.pt")] if folder.exists() else []
    return sorted(int(r) for r in found if r.isdigit())


def load_round(paths: RunPaths, round_index: int, device: torch.device) -> dict[str, Any]:
    """The stored weights, masks and result of one round, or SddError naming the rounds there are (or
    what is wrong with the file: it is read without running code from it)."""
    path = paths.round_file(round_index)
    if not path.exists():
        have = available_rounds(paths)
        listed = ", ".join(map(str, have)) if have else "none (the run predates per-round weights; run it again)"
        raise SddError(f"round {round_index} has no stored weights in {path.parent}; rounds stored: {listed}")
    return read_round_file(path, device)


def last_sparse_lr(config: ExperimentConfig, round_index: int) -> float:
    """The LR of the last epoch of a round: finetune's fixed LR, otherwise the step schedule's end."""
    train = config.train
    if round_index > 0 and config.retrain.mode == "finetune":
        return config.retrain.finetune_lr
    return lr_at(train.epochs - 1, 1, train.lr, train.milestones, train.gamma)  # a warm-up is over by then


def stored_evaluation(result: dict[str, Any], config: ExperimentConfig, branch: str) -> dict[str, Any]:
    """The round's stored test/train accuracy of `branch` (main: the rewound/finetuned network)."""
    if branch == "reinit":
        return result.get("reinit", result) if config.retrain.mode != "reinit" else result
    if branch == "random_prune":
        return result.get("random_prune", {})
    return result.get("ticket", result) if config.retrain.mode == "reinit" else result


def redense(model: nn.Module, data: Dataset, config: ExperimentConfig, epochs: int, lr: float,
            round_index: int, control: Control | None = None, on_epoch=None) -> dict[str, torch.Tensor]:
    """Train every weight of `model` (pruned ones start at 0) `epochs` epochs at a fixed `lr`."""
    train = config.train.model_copy(update={"epochs": epochs})
    trainer = Trainer(model, data, train, {}, control or Control(), amp=config.runtime.mixed_precision,
                      round_index=round_index, seed=config.runtime.seed, seed_scheme=config.runtime.seed_scheme,
                      branch=Branch.REDENSE, on_epoch=on_epoch)
    trainer.train(fixed_lr=lr)
    return snapshot(model)


def official_redense(run, model: nn.Module, masks: dict[str, torch.Tensor], round_index: int,
                     control: Control | None = None, on_epoch=None) -> tuple[dict, dict]:
    """(sparse, re-dense) weights of the official procedure: the ticket retrained from the round's start
    (masked, from iteration t with the schedule and its warm-up), then T more epochs of the whole network
    on the same optimizer, the schedule going on. `run` is a core.analysis.finished_run_branches.StoredRun."""
    from .finished_run_branches import round_start_of, ticket_start

    cfg, control = run.config, control or Control()
    if round_index > 0:
        weights, iteration, fixed_lr, _ = round_start_of(run, round_index)
    elif run.state.rewind is not None and RETRAIN_MODES[cfg.retrain.mode].rewind_schedule:  # the dense level
        weights, iteration, fixed_lr = run.state.rewind, min(cfg.retrain.rewind_iteration, _total(run)), None
    else:
        weights, iteration, fixed_lr = run.state.init, 0, None
    model.load_state_dict(ticket_start(weights, masks))
    kept: dict[str, Any] = {}

    def trainer(train, masks_now) -> Trainer:
        return Trainer(model, run.data, train, masks_now, control, amp=cfg.runtime.mixed_precision,
                       round_index=round_index, seed=cfg.runtime.seed, seed_scheme=cfg.runtime.seed_scheme,
                       branch=Branch.REDENSE, on_epoch=on_epoch, fast=cfg.runtime.fast,
                       on_epoch_end=lambda epoch, optimizer, result: kept.update(optimizer=optimizer.state_dict()))

    trainer(cfg.train, masks).train(start_iteration=iteration, fixed_lr=fixed_lr)
    sparse = snapshot(model)
    longer = cfg.train.model_copy(update={"epochs": 2 * cfg.train.epochs})
    trainer(longer, {}).train(start_iteration=_total(run), fixed_lr=fixed_lr, optimizer_state=kept.get("optimizer"))
    return sparse, snapshot(model)


def _total(run) -> int:
    """T in iterations: where the sparse training of a round ends."""
    return run.config.train.epochs * batches_per_epoch(len(run.data.y_train), run.config.train.batch_size)


def mix(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) first + alpha second for float tensors; integer buffers from the nearer endpoint."""
    out = {}
    for name, a in first.items():
        b = second[name]
        if a.is_floating_point():
            out[name] = a if alpha == 0 else b if alpha == 1 else torch.lerp(a, b, alpha)
        else:
            out[name] = a if alpha < 0.5 else b
    return out


def evaluate_both(model: nn.Module, data: Dataset, batch_size: int, autocast=None) -> dict[str, float]:
    train = evaluate(model, data.x_train, data.y_train, batch_size, autocast)
    test = evaluate(model, data.x_test, data.y_test, batch_size, autocast)
    return {"train_loss": train.loss, "train_acc": train.acc, "test_loss": test.loss, "test_acc": test.acc}


def bn_inputs(data: Dataset, samples: int | None, config: ExperimentConfig) -> torch.Tensor:
    """The training inputs batch-norm statistics are recomputed on: all, or `samples` of a seeded shuffle."""
    runtime = config.runtime
    order = subset_order(len(data.x_train), samples,
                         stream_seed(runtime.seed, Purpose.BN_SAMPLES, scheme=runtime.seed_scheme))
    return data.x_train if order is None else data.x_train[order.to(data.x_train.device)]


def recompute_bn(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> None:
    """Every batch-norm layer's running statistics recomputed on `inputs` (train mode, no gradients, the
    average over batches: torch.optim.swa_utils.update_bn); nothing to do without batch norm."""
    from torch.optim.swa_utils import update_bn

    update_bn((inputs[first : first + batch_size] for first in range(0, len(inputs), batch_size)), model)


def interpolate(model: nn.Module, sparse: dict[str, torch.Tensor], dense: dict[str, torch.Tensor],
                data: Dataset, steps: int, batch_size: int, autocast=None,
                bn_from: torch.Tensor | None = None) -> list[dict[str, float]]:
    """Metrics along the straight line from `sparse` (alpha 0) to `dense` (alpha 1); batch-norm statistics
    interpolated too, or recomputed at each point on `bn_from` when given."""
    points = []
    for index in range(steps):
        alpha = index / (steps - 1)
        model.load_state_dict(mix(sparse, dense, alpha))
        if bn_from is not None:
            recompute_bn(model, bn_from, batch_size)
        points.append({"alpha": alpha, **evaluate_both(model, data, batch_size, autocast)})
    return points


def filter_normalized_direction(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None,
                                generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A random direction with each filter scaled to its weight's filter norm (Li et al. 2018)."""
    direction = {}
    for name, w in weights.items():
        if not w.is_floating_point() or w.dim() < 2:
            direction[name] = torch.zeros_like(w)  # biases, BN parameters and buffers stay put
            continue
        d = torch.randn(w.shape, generator=generator).to(w)
        if masks and name in masks:
            d = d * masks[name].to(w)
        w_norm = w.flatten(1).norm(dim=1).view(-1, *[1] * (w.dim() - 1))
        d_norm = d.flatten(1).norm(dim=1).view(-1, *[1] * (w.dim() - 1))
        direction[name] = d * w_norm / d_norm.clamp_min(1e-12)
    return direction


def loss_plot_1d(model: nn.Module, weights: dict[str, torch.Tensor], direction: dict[str, torch.Tensor],
                 data: Dataset, points: int, batch_size: int, autocast=None, span: float = 1.0) -> list[dict]:
    """Metrics at w + beta d for `points` betas evenly spaced in [-span, span]."""
    rows = []
    for index in range(points):
        beta = -span + 2 * span * index / (points - 1)
        moved = {k: (w + beta * direction[k]) if w.is_floating_point() else w for k, w in weights.items()}
        model.load_state_dict(moved)
        rows.append({"beta": beta, **evaluate_both(model, data, batch_size, autocast)})
    return rows


def _autocast(model: nn.Module, data: Dataset, config: ExperimentConfig):
    return Trainer(model, data, config.train, {}, Control(), amp=config.runtime.mixed_precision).autocast()


def analyze_round(model: nn.Module, data: Dataset, config: ExperimentConfig, stored: dict[str, Any],
                  round_index: int, options: RedenseOptions, control: Control | None = None, on_epoch=None,
                  official=None) -> dict[str, Any]:
    """Re-dense one stored round, interpolate back to it, and optionally draw both 1-D loss plots.
    `official` (the run, a core.analysis.finished_run_branches.StoredRun, given when options.official): the official procedure,
    whose sparse end is the ticket retrained from the rewind point (the stored round's own numbers are kept
    under `stored`)."""
    branch = options.branch
    weights_key = "model" if branch == "main" else f"{branch}_model"
    if weights_key not in stored:
        raise SddError(f"round {round_index} has no {branch} branch; use --branch main, or train it with "
                       f"`sdd-tui branch ID {branch.replace('_', '-')} --rounds {round_index}`")
    batch = config.train.eval_batch_size
    autocast = _autocast(model, data, config)
    if official is not None:
        sparse, redensed = official_redense(official, model, stored["masks"], round_index, control, on_epoch)
        model.load_state_dict(sparse)
        sparse_eval = evaluate_both(model, data, batch, autocast)
        model.load_state_dict(redensed)
        epochs, lr = config.train.epochs, last_sparse_lr(config, round_index)
    else:
        sparse = {k: v.clone() for k, v in stored[weights_key].items()}
        model.load_state_dict(sparse)
        sparse_eval = evaluate_both(model, data, batch, autocast)
        epochs = options.short_epochs
        lr = last_sparse_lr(config, round_index) if options.lr is None else options.lr
        redense(model, data, config, epochs, lr, round_index, control, on_epoch)
    dense = snapshot(model)
    dense_eval = evaluate_both(model, data, batch, autocast)
    recorded = stored_evaluation(stored.get("result", {}), config, branch)
    bn_from = bn_inputs(data, options.bn_samples, config) if options.bn == "recompute" else None
    result = {
        "round": round_index, "branch": branch, "sparsity": stored.get("result", {}).get("sparsity"),
        "procedure": "official" if official is not None else "short",
        "epochs": epochs, "lr": lr, "bn": "recomputed" if bn_from is not None else "interpolated",
        "bn_samples": len(bn_from) if bn_from is not None else None,
        "stored": {k: recorded.get(k) for k in ("test_acc", "train_acc", "test_loss", "train_loss")},
        "sparse": sparse_eval, "redense": dense_eval,
        "interpolation": interpolate(model, sparse, dense, data, options.steps, batch, autocast, bn_from),
    }
    if options.filter_points:
        result["filter_normalized"] = _filter_plots(model, data, config, stored, round_index, options, sparse,
                                                    dense, autocast)
    return result


def _filter_plots(model, data, config, stored, round_index, options, sparse, dense, autocast) -> dict[str, list]:
    """The 1-D filter-normalised loss plots around the sparse and the re-dense end."""
    runtime = config.runtime
    direction_from = generator(runtime.seed, Purpose.DIRECTION, round_index, scheme=runtime.seed_scheme)
    plots = {}
    sparse_masks = stored["random_prune_masks"] if options.branch == "random_prune" else stored["masks"]
    for name, weights, masks in (("sparse", sparse, sparse_masks), ("redense", dense, None)):
        direction = filter_normalized_direction(weights, masks, direction_from)
        plots[name] = loss_plot_1d(model, weights, direction, data, options.filter_points,
                                   config.train.eval_batch_size, autocast)
    return plots


def analyze_run(record: RunRecord, home: Path, options: RedenseOptions, progress: Progress | None = None,
                control: Control | None = None) -> dict[str, dict[str, Any]]:
    """Re-dense and interpolation results of several stored rounds of a run, keyed by round (as a string)."""
    from ..engine.device import resolve_device

    config = record.experiment_config()
    target = resolve_device(options.device or config.runtime.device)
    paths = RunPaths(home, record.id)
    stored = {r: load_round(paths, r, target) for r in options.rounds}  # fail before any training
    say = progress or (lambda text: None)
    with run_context(threads=config.runtime.threads):
        return _analyze_rounds(record, home, config, target, stored, options, control, say)


def _analyze_rounds(record, home, config, target, stored, options: RedenseOptions, control, say) -> dict[str, Any]:
    from ..data.datasets import load_dataset
    from ..engine.models import build_model

    run = None
    if options.official:  # the round's start weights (the rewind point) are in the run's checkpoint
        from .finished_run_branches import open_run

        run = open_run(record, Path(home), target, say)
        data = run.data
    else:
        data = load_dataset(config.data, config.noise, Path(home), config.runtime.seed,
                            config.runtime.seed_scheme).to(target)
    model = build_model(config.model, data.input_shape, data.num_classes, config.runtime.seed).to(target)
    results = {}
    for round_index in options.rounds:
        if options.official:
            say(f"round {round_index}: the ticket retrained from its start, then {config.train.epochs} epochs dense "
                f"(the official re-dense), then {options.steps} interpolation points")
        else:
            lr = options.lr or last_sparse_lr(config, round_index)
            say(f"round {round_index}: re-dense {options.short_epochs} epochs at lr {lr:g}, "
                f"then {options.steps} interpolation points")
        results[str(round_index)] = analyze_round(model, data, config, stored[round_index], round_index, options,
                                                  control, official=run)
    return results
