"""The networks of one run on its device: built from a seed, each compiled once with runtime.compile."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..config import ExperimentConfig
from ..data.datasets import Dataset
from ..seeds import Purpose, stream_seed
from .models import build_model
from .runtime_choices import RuntimeChoices
from .training import compile_model


class RunModels:
    """Builds the run's models; `say(text, level)` reports what compiling did."""

    def __init__(self, config: ExperimentConfig, data: Dataset, device: torch.device,
                 say: Callable[[str, str], None]):
        self.config, self.data, self.device, self.say = config, data, device, say
        self.compiled: dict[int, nn.Module] = {}  # id(model) -> its torch.compile wrapper
        self.reinit_model: nn.Module | None = None  # the reinit branch's one module, when compiling

    @property
    def choices(self) -> RuntimeChoices:
        return RuntimeChoices.for_device(self.device, self.config.runtime.fast, self.config.runtime.amp)

    def new(self, seed: int) -> nn.Module:
        model = build_model(self.config.model, self.data.input_shape, self.data.num_classes, seed).to(self.device)
        if self.data.is_image and self.choices.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def init_seed(self) -> int:
        """The seed of the run's dense init (core.seeds)."""
        runtime = self.config.runtime
        return stream_seed(runtime.seed, Purpose.INIT, scheme=runtime.seed_scheme)

    def fresh_seed(self, round_index: int) -> int:
        """The seed of a round's fresh init (scratch mode, the reinit branch)."""
        runtime = self.config.runtime
        return stream_seed(runtime.seed, Purpose.FRESH_INIT, round_index, scheme=runtime.seed_scheme)

    def forward_of(self, model: nn.Module) -> nn.Module | None:
        return self.compiled.get(id(model))

    def compile(self, model: nn.Module) -> None:
        """With runtime.compile: compile `model` once; every round reuses it (masks change values only)."""
        runtime = self.config.runtime
        if not runtime.compile:
            return
        if not runtime.fast:
            self.say("runtime.compile is ignored on the slow path (runtime.fast=false): it trains eagerly", "warning")
            return
        count = self.config.train.batch_size
        x, y = self.data.x_train[:count], self.data.y_train[:count]
        choices = self.choices
        try:
            compiled, seconds = compile_model(model, x, y, choices.autocast(self.device), choices.compile_backend)
        except Exception as error:  # a missing C++ compiler or an unsupported op must not cost the run
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            self.say(f"torch.compile failed ({type(error).__name__}: {reason}); training eagerly; "
                     f"--set runtime.compile=false hides this", "warning")
            return
        self.compiled[id(model)] = compiled
        self.say(f"torch.compile: model compiled in {seconds:.1f} s; every round reuses it", "info")

    def fresh_reinit(self, round_index: int) -> nn.Module:
        """A freshly initialised model for the reinit branch; one module (compiled once) when compiling."""
        fresh = self.new(self.fresh_seed(round_index))
        if not (self.config.runtime.compile and self.config.runtime.fast):
            return fresh
        if self.reinit_model is None:
            self.reinit_model = fresh
            self.compile(fresh)
        else:
            self.reinit_model.load_state_dict(fresh.state_dict())
        return self.reinit_model

