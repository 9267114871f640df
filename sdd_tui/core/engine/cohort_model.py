"""K networks of the MLP family as one: every tensor stacked over members, a batched forward, per-member SGD.

A weight of shape (out, in) becomes one (K, out, in) tensor; each member's own module keeps reading
and writing its slice of it (its parameters become views), so snapshots, checkpoints, round results
and pruning see an ordinary module. The forward is a chain of `baddbmm`s: one kernel per layer for
all members, whose backward gives each member the gradients it gets alone. `PackedSGD` is torch's SGD (weight decay added to the gradient, momentum buffer, step)
with lr, momentum and weight decay as per-member tensors; `PackedMasks` keeps pruned weights exactly 0.
"""

from __future__ import annotations

import functools
import inspect

import torch
from torch import nn

from ..config import TrainConfig
from .models import MLP
from .pruning import Masks


def packable_module(module: nn.Module) -> bool:
    return isinstance(module, MLP)


def _per_member(values: list[float], like: torch.Tensor) -> torch.Tensor:
    """(K,) values shaped to broadcast over a stacked tensor like `like`: (K, 1, 1) or (K, 1)."""
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, *[1] * (like.dim() - 1))


def linear_forward(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x @ W^T + b for each member: (K, B, in) x (K, out, in) -> (K, B, out)."""
    return torch.baddbmm(bias.unsqueeze(1), inputs, weight.transpose(1, 2))


def linear_backward(grad: torch.Tensor, inputs: torch.Tensor, weight: torch.Tensor, input_grad: bool
                    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """(the inputs' gradient or None, the weight's, the bias's) of linear_forward: what F.linear's backward
    computes, in the same layouts."""
    return (torch.bmm(grad, weight) if input_grad else None, torch.bmm(grad.transpose(1, 2), inputs), grad.sum(1))


class PackedLinear(torch.autograd.Function):
    """x @ W^T + b for each member: (K, B, in) x (K, out, in) -> (K, B, out). The backward computes what
    F.linear's does (grad^T @ x for the weight, grad @ W for the input, a sum for the bias) in the same
    layouts, so that on the CPU each member's gradients are bit for bit those it gets alone."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inputs, weight)
        return linear_forward(inputs, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        inputs, weight = ctx.saved_tensors
        return linear_backward(grad, inputs, weight, ctx.needs_input_grad[0])


def packed_linear(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    if torch.is_autocast_enabled(inputs.device.type):  # mixed precision: autograd's own backward casts right
        return linear_forward(inputs, weight, bias)
    return PackedLinear.apply(inputs, weight, bias)


class PackedMLP:
    """The members' MLPs (the same widths) as stacked leaf tensors; each member's module views its slice."""

    def __init__(self, modules: list[nn.Module]):
        self.modules = modules
        self.names = [name for name, _ in modules[0].named_parameters()]
        self.depth = len(modules[0].hidden) + 1
        with torch.no_grad():
            self.params = {name: torch.stack([m.get_parameter(name) for m in modules]).requires_grad_()
                           for name in self.names}
        self.bind()

    @property
    def members(self) -> int:
        return len(self.modules)

    def bind(self) -> None:
        """Make each member's parameters views of its slice: what the cohort trains, its module holds."""
        for index, module in enumerate(self.modules):
            for name, param in module.named_parameters():
                param.data = self.params[name].data[index]

    def tensors(self) -> list[torch.Tensor]:
        return [self.params[name] for name in self.names]

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        prefixes = [f"hidden.{i}" for i in range(self.depth - 1)] + ["output"]
        return [(self.params[f"{p}.weight"], self.params[f"{p}.bias"]) for p in prefixes]

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """(K, B, ...) inputs -> (K, B, classes) logits, each member through its own weights."""
        hidden = inputs.flatten(2)
        layers = self.layers()
        for depth, (weight, bias) in enumerate(layers):
            hidden = packed_linear(hidden, weight, bias)
            if depth < len(layers) - 1:
                hidden = torch.relu_(hidden)  # in place: no layer's backward keeps its output
        return hidden

    def zero_grad(self) -> None:
        for tensor in self.params.values():
            tensor.grad = None

    @torch.no_grad()
    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, B, ...) inputs, (K, B) targets -> (each member's mean cross-entropy (K,), logits (K, B, classes)),
        and each tensor's `.grad` set to that of the sum of the losses. The backward is written out: the kernels
        autograd runs for `cross_entropy(self(inputs) ..., reduction="none").view(K, B).mean(1).sum().backward()`
        in the same order, so the gradients are the same bit for bit, without the graph's bookkeeping (a fifth
        of a packed step on a CPU). Full precision only: mixed precision goes through autograd."""
        count, batch = targets.shape
        params = self.layers()
        layers = [(weight.detach(), bias.detach()) for weight, bias in params]
        activations = [inputs.flatten(2)]  # each layer's input
        for depth, (weight, bias) in enumerate(layers):
            hidden = linear_forward(activations[-1], weight, bias)
            activations.append(torch.relu_(hidden) if depth < len(layers) - 1 else hidden)
        logits = activations.pop()
        flat_targets = targets.flatten()
        log_probs = torch._log_softmax(logits.flatten(0, 1), 1, False)
        nll, total_weight = torch.ops.aten.nll_loss_forward(log_probs, flat_targets, None, 0, -100)  # 0: no reduction
        losses = nll.view(count, batch).mean(1)
        # backward: sum -> ones; mean over the batch -> 1 / B each; nll_loss; log_softmax
        grad = torch.ones(count, batch, dtype=losses.dtype, device=losses.device).div(batch).view(-1)
        grad = torch.ops.aten.nll_loss_backward(grad, log_probs, flat_targets, None, 0, -100, total_weight)
        grad = torch._log_softmax_backward_data(grad, log_probs, 1, log_probs.dtype).view(count, batch, -1)
        for depth in range(len(layers) - 1, -1, -1):  # as PackedLinear.backward, then relu's backward
            layer_input, (weight, bias) = activations[depth], params[depth]
            grad_input, weight.grad, bias.grad = linear_backward(grad, layer_input, layers[depth][0], depth > 0)
            if depth:
                grad = torch.ops.aten.threshold_backward(grad_input, layer_input, 0)
        return losses, logits


class PackedMasks:
    """Each member's masks stacked as float tensors; `apply()` zeroes every pruned weight in one foreach op."""

    def __init__(self, net: PackedMLP, member_masks: list[Masks]):
        names = [n for n in member_masks[0] if any(not bool(masks[n].all()) for masks in member_masks)]
        self.tensors = [net.params[n] for n in names]  # a tensor nothing is pruned from needs no multiply
        self.masks = [torch.stack([masks[n] for masks in member_masks]).to(net.params[n].dtype) for n in names]

    @torch.no_grad()
    def apply(self) -> None:
        if self.tensors:
            torch._foreach_mul_(self.tensors, self.masks)


class PackedSGD:
    """SGD as torch.optim.SGD steps it (dampening 0, no Nesterov), each member with its own lr, momentum and
    weight decay. A member whose momentum is 0 keeps a buffer equal to its gradient: the same step."""

    def __init__(self, net: PackedMLP, configs: list[TrainConfig], fused: bool = False):
        self.net, self.configs, self.fused = net, configs, fused
        self.params = net.tensors()
        self.buffers = [torch.zeros_like(p) for p in self.params]
        self.momenta = [_per_member([c.momentum for c in configs], p) for p in self.params]
        self.decays = [_per_member([c.weight_decay for c in configs], p) for p in self.params]
        self.has_decay = any(c.weight_decay for c in configs)
        self.step_sizes: list[torch.Tensor] = []  # -lr per member
        self.lrs: list[float] = []

    def set_lrs(self, lrs: list[float]) -> None:
        self.lrs = list(lrs)
        self.step_sizes = [_per_member([-lr for lr in lrs], p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if self.has_decay:
            torch._foreach_addcmul_(grads, self.params, self.decays)
        torch._foreach_mul_(self.buffers, self.momenta)
        torch._foreach_add_(self.buffers, grads)
        torch._foreach_addcmul_(self.params, self.buffers, self.step_sizes)

    # -- one member's view, as torch.optim.SGD: what its checkpoints hold

    def member_optimizer(self, index: int) -> MemberOptimizer:
        """Member `index`'s optimizer as an ordinary run would have it: its state dict is a checkpoint's."""
        return MemberOptimizer(self, index)

    def member_state(self, index: int) -> dict:
        """What torch.optim.SGD's `state_dict()` gives for member `index` (as `make_optimizer` builds it), built
        without torch.optim: an optimizer's first use imports torch._dynamo, seconds of a cohort's start."""
        config = self.configs[index]
        group = {**_sgd_defaults(), "lr": self.lrs[index] if self.lrs else 0.0, "momentum": config.momentum,
                 "weight_decay": config.weight_decay, **({"fused": True} if self.fused else {"foreach": True}),
                 "params": list(range(len(self.params)))}
        # torch keeps no buffer without momentum; the live buffers, as torch's state dict holds its own
        state = {position: {"momentum_buffer": buffer[index]} for position, buffer in enumerate(self.buffers)}
        return {"state": state if config.momentum else {}, "param_groups": [group]}

    def load_member(self, index: int, state: dict) -> None:
        """Carry on from member `index`'s saved optimizer state (an ordinary run's, or a cohort's), as
        torch.optim.SGD's `load_state_dict` reads it: saved entries by their place in the saved group."""
        groups = state["param_groups"]
        ids = [key for group in groups for key in group["params"]]
        if len(groups) != 1 or len(ids) != len(self.params):
            raise ValueError(f"the saved optimizer state has {len(ids)} tensors in {len(groups)} group(s); "
                             f"the network has {len(self.params)} in one")
        with torch.no_grad():
            for key, buffer in zip(ids, self.buffers):
                saved = state["state"].get(key, {}).get("momentum_buffer")
                if saved is None:
                    buffer[index].zero_()
                else:
                    buffer[index].copy_(saved)


class MemberOptimizer:
    """One member's optimizer as `Trainer.on_epoch_end` callbacks see one: `state_dict()` (what a checkpoint
    keeps) is torch.optim.SGD's for that member; the cohort's PackedSGD steps it."""

    def __init__(self, packed: PackedSGD, index: int):
        self.packed, self.index = packed, index

    def state_dict(self) -> dict:
        return self.packed.member_state(self.index)


@functools.cache
def _sgd_defaults() -> dict:
    """torch.optim.SGD's param-group settings and their defaults, in the order its state dict lists them."""
    parameters = inspect.signature(torch.optim.SGD.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
