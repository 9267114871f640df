"""The one list of built-in names: models, datasets and pruning scores, each with its facts.

Config validation, the new-experiment form and the docs read these tables; the engine loads an entry's
function only when a run needs it. So this module imports no torch: a built-in entry names its function
as `module:function` inside `sdd_tui.core`, imported on first use; one registered at run time (a test, a
research script) hands the function itself.

    @MODELS.register("tiny", image_only=False)         # or core.engine.models.register
    def tiny(config, input_shape, num_classes): ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Target = str | Callable[..., Any]  # "module:function" in sdd_tui.core, or the function


@dataclass(frozen=True)
class Entry:
    name: str
    target: Target
    facts: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[..., Any]:
        if callable(self.target):
            return self.target
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(f".{module}", __package__), attribute)

    def __getattr__(self, fact: str) -> Any:  # entry.image_only: a fact, None when not given
        if fact.startswith("__"):
            raise AttributeError(fact)
        return self.facts.get(fact)


class Registry:
    """Names -> entries of one kind; iterating gives the names in the order they were added."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: Target, **facts: Any) -> Entry:
        if not name or ":" in name or name != name.strip():
            raise ValueError(f"a {self.kind} name is a word without ':' (that marks a plugin); got {name!r}")
        self._entries[name] = entry = Entry(name, target, facts)
        return entry

    def register(self, name: str, **facts: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A decorator: `@REGISTRY.register("name", fact=value)` adds the function under `name`."""
        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            self.add(name, function, **facts)
            return function

        return decorate

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def entry(self, name: str) -> Entry:
        return self._entries[name]

    def load(self, name: str) -> Callable[..., Any]:
        return self._entries[name].load()

    def names(self, **facts: Any) -> list[str]:
        """The names, or those whose facts have these values (`names(image_only=True)`)."""
        return [name for name, entry in self._entries.items()
                if all(entry.facts.get(fact) == value for fact, value in facts.items())]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


# Models: builder(model_config, input_shape, num_classes) -> nn.Module (core/engine/models.py).
# image_only: needs (C, H, W) samples; packable: the MLP family a sweep cohort trains packed (core/engine/cohort_model.py).
MODELS = Registry("model")
MODELS.add("lenet300_100", "engine.models:lenet300_100", image_only=False, packable=True)
MODELS.add("mlp", "engine.models:mlp", image_only=False, packable=True)
MODELS.add("resnet18", "engine.models:resnet18", image_only=True)
MODELS.add("resnet101", "engine.models:resnet101", image_only=True)
MODELS.add("vgg16", "engine.models:vgg16", image_only=True)

# Datasets: loader(data_config, data_dir, seed, stop) -> (x_train, y_train, x_test, y_test[, crops]) on the CPU,
# normalised (core/data/datasets.py). image: samples are (C, H, W) (False: (D,); None: either, as the config says);
# classes: the class count when fixed ("config": data.num_classes; None: the largest label + 1);
# flips: whose class-dependent table `noise.kind = "asymmetric"` uses (None: class c -> c + 1, as pairflip).
DATASETS = Registry("dataset")
DATASETS.add("mnist", "data.datasets:load_torchvision", image=True, classes=10, flips="mnist")
DATASETS.add("fashion_mnist", "data.datasets:load_torchvision", image=True, classes=10)
DATASETS.add("mnist1d", "data.datasets:load_mnist1d", image=False, classes=10, flips="mnist")
DATASETS.add("cifar10", "data.datasets:load_torchvision", image=True, classes=10, flips="cifar10")
DATASETS.add("cifar100", "data.datasets:load_torchvision", image=True, classes=100, flips="cifar100")
DATASETS.add("tiny_imagenet", "data.datasets:load_tiny_imagenet", image=True)
DATASETS.add("digits", "data.datasets:load_digits", image=False, classes=10, flips="mnist")
DATASETS.add("synthetic", "data.datasets:load_synthetic", image=None, classes="config")

# Pruning scores: score(model, masks, generator, batch) -> {tensor name: scores} (core/engine/pruning.py); the lowest go.
SCORES = Registry("pruning score")
SCORES.add("magnitude", "engine.pruning:magnitude_score")
SCORES.add("gradient", "engine.pruning:gradient_score")
SCORES.add("random", "engine.pruning:random_score")


def choices(registry: Registry) -> str:
    """`a | b | c`: the names as the docs and error messages list them."""
    return " | ".join(registry)
