"""What a checkpoint holds, typed: the state after the last finished round, and maybe an unfinished round.

On disk both are plain dicts of tensors, numbers and strings, so that `torch.load(weights_only=True)`
reads them without running code from the file. `state_from_payload` validates a loaded dict (a
wrong key or type is a ValueError naming it) and upgrades the first format, which stored the branch
as 0/1 and NumPy's RNG state as a tuple holding an array.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch
from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from torch import nn
from typing_extensions import NotRequired, TypedDict

from .pruning import Masks
from .training import Branch, EpochStats, snapshot

Weights = dict[str, torch.Tensor]
TENSORS = ConfigDict(arbitrary_types_allowed=True)  # pydantic checks tensors with isinstance


@with_config(TENSORS)
class NumpyRng(TypedDict):
    """numpy.random.get_state(legacy=False), the key as a tensor (an array would need unpickling code)."""

    bit_generator: str
    key: torch.Tensor
    pos: int
    has_gauss: int
    gauss: float


@with_config(TENSORS)
class RngState(TypedDict):
    torch: torch.Tensor
    python: tuple
    cuda: NotRequired[list[torch.Tensor]]
    numpy: NotRequired[NumpyRng]


@with_config(TENSORS)
class Labels(TypedDict):
    """The noisy training labels the finished rounds saw, and which samples are noisy."""

    y_train: torch.Tensor
    noisy_mask: torch.Tensor


@with_config(TENSORS)
@dataclass
class PartialRound:
    """An unfinished round at an epoch end: enough to go on training from the next epoch exactly."""

    round: int
    branch: Branch  # the branch under way; REINIT: the main branch has finished (main_result, main_model)
    next_epoch: int
    model: Weights
    optimizer: dict[str, Any]
    masks: Masks
    epochs: list[EpochStats]  # this branch's epochs so far
    captured: Weights | None  # round 0: the rewind weights, once training passed the rewind iteration
    main_result: dict[str, Any] | None = None
    main_model: Weights | None = None
    seconds: float = 0.0  # spent on this branch so far
    rng: RngState | None = None

    def to_payload(self) -> dict[str, Any]:
        return {**vars(self), "branch": self.branch.value, "epochs": [vars(stats) for stats in self.epochs]}


@with_config(TENSORS)
@dataclass
class State:
    """The state after the last finished round, and maybe an unfinished round."""

    round: int  # the last finished round; -1 while the dense round is unfinished
    model: Weights | None
    masks: Masks | None
    init: Weights
    rewind: Weights | None
    rounds: list[dict[str, Any]]
    reinit_model: Weights | None = None  # this round's reinit branch; kept in its round file only
    partial: PartialRound | None = None
    rng: RngState | None = None
    labels: Labels | None = None
    dense: Weights | None = None  # prune.schedule=oneshot: the trained dense weights every round prunes

    def to_payload(self, partial: PartialRound | None, labels: Labels | None, config: dict[str, Any]) -> dict:
        """The checkpoint: this state with `partial` (or nothing) under way."""
        return {"round": self.round, "model": self.model, "masks": self.masks, "init": self.init,
                "rewind": self.rewind, "rounds": self.rounds, "partial": partial.to_payload() if partial else None,
                "labels": labels, "rng": partial.rng if partial else rng_state(), "config": config,
                "dense": self.dense}


@with_config(TENSORS)
@dataclass
class RoundWeights:
    """A round file (runs/<id>/rounds/round-<r>.pt): the round's trained weights, masks and result."""

    round: int
    model: Weights
    masks: Masks
    result: dict[str, Any]
    reinit_model: Weights | None = None


@dataclass
class RoundInProgress:
    """The round being trained, as an epoch end's checkpoint needs it."""

    index: int
    masks: Masks
    started: float = field(default_factory=time.perf_counter)  # of the branch under way
    main_result: dict[str, Any] | None = None  # set once the main branch is done and the reinit branch trains
    main_model: Weights | None = None

    def at_epoch_end(self, branch: Branch, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                     epochs: list[EpochStats], captured: Weights | None) -> PartialRound:
        return PartialRound(self.index, branch, epoch + 1, snapshot(model), optimizer_copy(optimizer), self.masks,
                            epochs, captured, self.main_result, self.main_model,
                            time.perf_counter() - self.started, rng_state())


def optimizer_copy(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A copy of the optimizer's state: training goes on mutating the live buffers in place.

    Tensors are cloned one by one: `copy.deepcopy` of a state dict costs tens of milliseconds.
    """
    state = optimizer.state_dict()
    tensors = {key: {name: value.clone() if torch.is_tensor(value) else value for name, value in entry.items()}
               for key, entry in state["state"].items()}
    return {"state": tensors, "param_groups": copy.deepcopy(state["param_groups"])}


# ---------------------------------------------------------------------------- RNG states


def rng_state() -> RngState:
    """The state of every global generator in use (the engine's own generators are seeded per epoch)."""
    state: RngState = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy
    except ImportError:  # numpy is optional for the engine
        return state
    numpy_state = numpy.random.get_state(legacy=False)
    state["numpy"] = {"bit_generator": numpy_state["bit_generator"],
                      "key": torch.from_numpy(numpy_state["state"]["key"].astype(numpy.int64)),
                      "pos": int(numpy_state["state"]["pos"]), "has_gauss": int(numpy_state["has_gauss"]),
                      "gauss": float(numpy_state["gauss"])}
    return state


def restore_rng(state: RngState | None) -> None:
    if not state:
        return
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "numpy" in state:
        import numpy

        saved = state["numpy"]
        numpy.random.set_state({"bit_generator": saved["bit_generator"], "has_gauss": saved["has_gauss"],
                                "gauss": saved["gauss"], "state": {"key": saved["key"].cpu().numpy().astype(
                                    numpy.uint32), "pos": saved["pos"]}})


# ---------------------------------------------------------------------------- reading


def state_from_payload(payload: Any) -> State:
    """A loaded checkpoint as a State; ValueError naming the first wrong or missing field."""
    return _validated(State, _upgraded(payload) if isinstance(payload, dict) else payload)


def round_weights_from_payload(payload: Any) -> RoundWeights:
    return _validated(RoundWeights, payload)


@cache
def _adapter(kind: type) -> TypeAdapter:
    return TypeAdapter(kind)


def _validated(kind: type, payload: Any):
    try:
        return _adapter(kind).validate_python(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the whole file"
        raise ValueError(f"{where}: {first['msg']}") from None


def _upgraded(payload: dict[str, Any]) -> dict[str, Any]:
    """The first format: the partial round's branch as 0/1, NumPy's RNG state as a tuple with an array."""
    partial = payload.get("partial")
    if isinstance(partial, dict):
        branch = partial.get("branch")
        if type(branch) is int and branch in (0, 1):
            partial = {**partial, "branch": (Branch.MAIN, Branch.REINIT)[branch]}
        partial = {**partial, "rng": _upgraded_rng(partial.get("rng"))}
    return {**payload, "partial": partial, "rng": _upgraded_rng(payload.get("rng"))}


def _upgraded_rng(rng: Any) -> Any:
    if not (isinstance(rng, dict) and isinstance(rng.get("numpy"), tuple) and len(rng["numpy"]) == 5):
        return rng
    import numpy

    name, key, pos, has_gauss, gauss = rng["numpy"]
    try:
        key = torch.from_numpy(numpy.asarray(key, dtype=numpy.int64))
    except (TypeError, ValueError):
        return rng  # validation names it
    return {**rng, "numpy": {"bit_generator": name, "key": key, "pos": pos, "has_gauss": has_gauss, "gauss": gauss}}
