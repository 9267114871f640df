"""What a finished round reports: accuracies, memorisation of the noisy labels, learning distance."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from ..data.datasets import Dataset
from . import pruning
from .training import EpochStats, evaluate

BRANCH_SUMMARY_KEYS = ("test_acc", "best_test_acc", "train_acc", "noisy_memorized", "noisy_true_acc",
                       "learning_distance", "test_loss", "seconds")


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


def round_result(round_index: int, model: nn.Module, data: Dataset, masks: pruning.Masks,
                 init: dict[str, torch.Tensor] | None, epochs: list[EpochStats], started: float,
                 eval_batch_size: int, autocast=None) -> dict[str, Any]:
    """One branch's result of a round; `init` None: no learning distance (analysis.learning_distance off).

    `seconds` runs from `started` (a perf_counter reading) to the end of this evaluation."""
    metrics = round_metrics(model, data, eval_batch_size, autocast)
    last = epochs[-1] if epochs else None
    best = max(epochs, key=lambda e: e.test_acc) if epochs else None
    return {
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
        "learning_distance": learning_distance(model, init, masks) if init is not None else None,
        "seconds": time.perf_counter() - started,
    }


def with_reinit(main: dict[str, Any], reinit: dict[str, Any], reinit_reported: bool) -> dict[str, Any]:
    """A round with both branches: the reinit branch under "reinit", or (retrain.mode=reinit) reported
    itself with the ticket under "ticket"."""
    if reinit_reported:
        return {**reinit, "round": main["round"], "ticket": branch_summary(main)}
    return {**main, "reinit": branch_summary(reinit)}


def branch_summary(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result.get(k) for k in BRANCH_SUMMARY_KEYS}


def _finite_or_none(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None
