"""What a plugin returns, checked: a dataset's four tensors and their labels, a model's output and its
prunable weights. Each mistake is one SddError naming the fix (core/plugins.py finds and imports the
plugin; this module needs torch, which core.config must not import)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import SddError


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} ({', '.join(type(v).__name__ for v in value[:6])})"
    return f"a {type(value).__name__}"


def check_plugin_data(result: Any, spec: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test) as returned by a dataset plugin, with integer labels as int64;
    SddError naming the fix for a wrong type, shape or label."""
    where = f"data.name={spec!r}"
    four_tensors = isinstance(result, (tuple, list)) and len(result) == 4
    if not (four_tensors and all(isinstance(t, torch.Tensor) for t in result)):
        raise SddError(f"{where} returned {_describe(result)}; return (x_train, y_train, x_test, y_test) as torch "
                       f"tensors (torch.as_tensor converts arrays)")
    x_train, y_train, x_test, y_test = result
    for name, tensor in zip(("x_train", "y_train", "x_test", "y_test"), result):
        if tensor.is_meta:
            raise SddError(f"{where}: {name} is on the meta device (it holds no values); return tensors on the CPU")
        if tensor.requires_grad:
            raise SddError(f"{where}: {name} requires grad; return data, not part of a graph ({name}.detach())")
    for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.dim() not in (2, 4) or len(x) == 0:
            raise SddError(f"{where}: x_{part} has shape {list(x.shape)}; samples must be N x D (vectors) "
                           f"or N x C x H x W (images), N >= 1")
        if not (x.is_floating_point() or x.dtype == torch.uint8):
            raise SddError(f"{where}: x_{part} is {x.dtype}; return float or uint8 inputs")
        if y.dim() != 1 or len(y) != len(x):
            raise SddError(f"{where}: y_{part} has shape {list(y.shape)} for {len(x)} samples; return one label "
                           f"per sample, shape ({len(x)},)")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise SddError(f"{where}: y_{part} is {y.dtype}; labels must be integer class indices (.long())")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise SddError(f"{where}: x_{part} holds {bad:,} NaN or infinite value(s); replace them (torch.nan_to_num) "
                           f"or drop those samples")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise SddError(f"{where}: x_train samples are {list(x_train.shape[1:])} but x_test samples are "
                       f"{list(x_test.shape[1:])}; both must have the same shape")
    _check_labels(y_train, y_test, where)
    return x_train, y_train.long(), x_test, y_test.long()


def _check_labels(y_train: torch.Tensor, y_test: torch.Tensor, where: str) -> None:
    """Class indices 0..C-1, C = the largest training label + 1; the test labels within them."""
    low = int(min(y_train.min(), y_test.min()))
    classes = int(y_train.max()) + 1
    if low < 0:
        raise SddError(f"{where}: labels out of range (smallest {low}); use class indices 0, 1, ..., C-1")
    if classes < 2:
        raise SddError(f"{where}: every training label is 0; a classifier needs at least 2 classes")
    if classes > len(y_train):  # not every class can be in training; and a label of 10**12 would ask for terabytes
        raise SddError(f"{where}: labels out of range: the largest training label is {classes - 1:,} but there are "
                       f"{len(y_train):,} training samples; number classes 0..C-1 with every class in training")
    if int(y_test.max()) >= classes:
        raise SddError(f"{where}: labels out of range: y_test has {int(y_test.max())} but the training labels "
                       f"stop at {classes - 1}; number classes 0..C-1 with every class in training")


def check_plugin_model(model: Any, spec: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """`model` if it is an nn.Module with a trainable parameter, mapping batches of 2 and of 3 samples to
    (batch, num_classes) scores (a model right only for one batch size fails in training otherwise)."""
    where = f"model.name={spec!r}"
    if not isinstance(model, nn.Module):
        raise SddError(f"{where} returned {_describe(model)}; return a torch.nn.Module")
    parameters = list(model.parameters())
    if not any(parameter.requires_grad for parameter in parameters):
        what = "has no parameters" if not parameters else "has every parameter frozen (requires_grad=False)"
        raise SddError(f"{where}: the model {what}; sdd-tui trains it: leave its weights trainable")
    if any(parameter.is_meta for parameter in parameters):
        raise SddError(f"{where}: the model's parameters are on the meta device; build it on the CPU")
    training = model.training
    model.eval()  # eval mode: BatchNorm needs no batch statistics
    try:
        for batch in (2, 3):
            output = _forward(model, where, batch, input_shape)
            shape = list(output.shape) if isinstance(output, torch.Tensor) else _describe(output)
            if shape != [batch, num_classes]:
                raise SddError(f"{where}: the model's output is {shape} for a batch of {batch} samples of shape "
                               f"{list(input_shape)}; it must be [{batch}, {num_classes}] for the data's "
                               f"{num_classes} classes, for any batch size")
    finally:
        model.train(training)
    return model


def _forward(model: nn.Module, where: str, batch: int, input_shape: tuple[int, ...]) -> Any:
    """The model's output for `batch` samples of zeros; a forward that fails is one line naming the batch."""
    try:
        with torch.no_grad():
            return model(torch.zeros(batch, *input_shape))
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0][:120]
        raise SddError(f"{where}: the model fails on a batch of {batch} samples of shape {list(input_shape)} "
                       f"({type(error).__name__}: {reason}); it must take any batch size") from None


def check_prunable(model: nn.Module, names: Any) -> list[str]:
    """The names a model's `prunable()` returned, if they are its parameters."""
    parameters = dict(model.named_parameters())
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise SddError(f"{type(model).__name__}.prunable() returned {_describe(names)}; return a list of "
                       f"parameter names such as 'fc.weight'")
    names = list(names)
    missing = [name for name in names if name not in parameters]
    if missing or not names:
        some = ", ".join(list(parameters)[:8])
        what = f"names {missing[0]!r}, which the model does not have" if missing else "names no parameter"
        raise SddError(f"{type(model).__name__}.prunable() {what}; its parameters are {some}"
                       f"{', ...' if len(parameters) > 8 else ''}")
    frozen = [name for name in names if not parameters[name].requires_grad]
    if frozen:
        raise SddError(f"{type(model).__name__}.prunable() names {frozen[0]!r}, which is frozen (requires_grad="
                       f"False); pruning retrains what it prunes: leave it trainable or leave it out")
    return names
