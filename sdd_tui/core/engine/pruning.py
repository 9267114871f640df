"""Unstructured pruning: masks, scores, global or layer-wise selection, and keeping pruned weights at 0.

Scores and selection are pure functions of tensors so they can be tested without training.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..registry import SCORES

Masks = dict[str, torch.Tensor]
Scores = dict[str, torch.Tensor]  # a score per weight of each masked tensor


def full_masks(model: nn.Module, names: list[str]) -> Masks:
    params = dict(model.named_parameters())
    return {name: torch.ones_like(params[name], dtype=torch.bool) for name in names}


def remaining(masks: Masks) -> int:
    return int(sum(int(mask.sum()) for mask in masks.values()))


def total(masks: Masks) -> int:
    return int(sum(mask.numel() for mask in masks.values()))


def sparsity(masks: Masks) -> float:
    """Fraction of prunable weights that are pruned, measured from the masks."""
    return 1.0 - remaining(masks) / total(masks)


def expected_sparsity(fraction: float, rounds: int) -> float:
    return 1.0 - (1.0 - fraction) ** rounds


# ---------------------------------------------------------------------------- scores


def magnitude_scores(model: nn.Module, masks: Masks) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {name: params[name].detach().abs() for name in masks}


def random_scores(masks: Masks, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {name: torch.rand(mask.shape, generator=generator).to(mask.device) for name, mask in masks.items()}


def gradient_scores(
    model: nn.Module, masks: Masks, inputs: torch.Tensor, targets: torch.Tensor
) -> dict[str, torch.Tensor]:
    """|dL/dw * w| on one training batch (SNIP-like saliency)."""
    params = dict(model.named_parameters())
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    scores = {name: (params[name].grad * params[name]).detach().abs() for name in masks}
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return scores


# ---------------------------------------------------------------------------- selection


def count_to_prune(alive: int, fraction: float) -> int:
    """How many of `alive` weights a round removes: ceil(fraction * alive), as open_lth does."""
    return min(alive, math.ceil(fraction * alive - 1e-9))


def _lowest(scores: torch.Tensor, alive: torch.Tensor, count: int) -> torch.Tensor:
    """Flat indices of the `count` lowest-scored alive entries; ties broken by position."""
    alive_index = torch.nonzero(alive.flatten()).flatten()
    alive_scores = scores.flatten()[alive_index].float()
    order = torch.sort(alive_scores, stable=True).indices[:count]
    return alive_index[order]


def prune_masks(scores: dict[str, torch.Tensor], masks: Masks, fraction: float, scope: str = "global") -> Masks:
    """New masks with exactly `count_to_prune` more weights removed (globally, or per tensor)."""
    if scope == "layer":
        new: Masks = {}
        for name, mask in masks.items():
            drop = _lowest(scores[name], mask, count_to_prune(int(mask.sum()), fraction))
            flat = mask.flatten().clone()
            flat[drop] = False
            new[name] = flat.view_as(mask)
        return new
    names = list(masks)
    flat_scores = torch.cat([scores[n].flatten().to(masks[n].device) for n in names])
    flat_alive = torch.cat([masks[n].flatten() for n in names])
    drop = _lowest(flat_scores, flat_alive, count_to_prune(int(flat_alive.sum()), fraction))
    flat_alive = flat_alive.clone()
    flat_alive[drop] = False
    new, offset = {}, 0
    for name in names:
        size = masks[name].numel()
        new[name] = flat_alive[offset : offset + size].view_as(masks[name])
        offset += size
    return new


Batch = Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]  # draws a training batch


# The scores by name, as core.registry.SCORES lists them: score(model, masks, generator, batch).
def magnitude_score(model: nn.Module, masks: Masks, generator: torch.Generator, batch: Batch) -> Scores:
    return magnitude_scores(model, masks)


def random_score(model: nn.Module, masks: Masks, generator: torch.Generator, batch: Batch) -> Scores:
    return random_scores(masks, generator)


def gradient_score(model: nn.Module, masks: Masks, generator: torch.Generator, batch: Batch) -> Scores:
    return gradient_scores(model, masks, *batch(generator))


def prune_step(model: nn.Module, masks: Masks, config, generator: torch.Generator, batch: Batch,
               fraction: float | None = None) -> Masks:
    """One round's pruning: score with `config.method`, drop `fraction` (default `config.fraction`) of the
    alive weights."""
    scores = SCORES.load(config.method)(model, masks, generator, batch)
    return prune_masks(scores, masks, config.fraction if fraction is None else fraction, config.scope)


def oneshot_step(model: nn.Module, masks: Masks, config, generator: torch.Generator, batch: Batch,
                 level: int) -> Masks:
    """One-shot pruning to round `level`: the dense network `model` (every weight of `masks` alive again)
    loses 1 - (1 - fraction)^level of its prunable weights at once, ceil-rounded as every round is."""
    dense = {name: torch.ones_like(mask) for name, mask in masks.items()}
    return prune_step(model, dense, config, generator, batch, expected_sparsity(config.fraction, level))


def shuffled_masks(masks: Masks, generator: torch.Generator) -> Masks:
    """Random masks with each tensor's own sparsity: its mask's entries in a random order (the official
    code's `randomly_prune` branch, `layerwise` strategy)."""
    shuffled = {}
    for name, mask in masks.items():
        order = torch.randperm(mask.numel(), generator=generator).to(mask.device)
        shuffled[name] = mask.flatten()[order].view_as(mask)
    return shuffled


def random_batch(x: torch.Tensor, y: torch.Tensor, size: int, generator: torch.Generator):
    """`size` samples drawn without replacement by `generator` (gradient scores' batch)."""
    index = torch.randperm(len(y), generator=generator)[:size].to(x.device)
    return x[index], y[index]


# ---------------------------------------------------------------------------- keeping zeros


class MaskApplier:
    """Multiplies masked tensors (weights, or their gradients) by their masks with foreach ops."""

    def __init__(self, model: nn.Module, masks: Masks):
        params = dict(model.named_parameters())
        # a tensor with nothing pruned never needs the multiply (every tensor of the dense round)
        pruned = [name for name, mask in masks.items() if not bool(mask.all())]
        self.params = [params[name] for name in pruned]
        # float masks laid out like their weights (channels_last too), so foreach takes its fast path
        self.masks = [torch.empty_like(params[name]).copy_(masks[name]) for name in pruned]

    @torch.no_grad()
    def weights(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.masks)

    @torch.no_grad()
    def grads(self) -> None:
        pairs = [(p.grad, m) for p, m in zip(self.params, self.masks) if p.grad is not None]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [m for _, m in pairs])


def sparsity_by_layer(masks: Masks) -> dict[str, float]:
    return {name: 1.0 - float(mask.float().mean()) for name, mask in masks.items()}
