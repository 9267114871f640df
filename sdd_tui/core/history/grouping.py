"""Which runs are one experiment, and the statistic over them: one rule for every face.

Runs whose configs differ only in fields that do not change what is measured (seeds, where and how
fast it ran, checkpoint timing, names; which one-shot levels a run trained and whose dense round it
reused: the levels of one one-shot run are one curve) are seeds of one setting. The compare screen, `plot`, `sweeps
show` and `sweeps plot` all group with `group_by_setting` and report mean +- sample std (n - 1).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..dotted import flatten
from .records import RunRecord, as_run_record

# Dotted config fields that may differ inside one group.
NOT_THE_EXPERIMENT = frozenset({
    "name", "description", "runtime.seed", "runtime.seed_scheme", "noise.seed", "runtime.device", "runtime.threads",
    "runtime.fast", "runtime.compile", "runtime.checkpoint_every", "runtime.checkpoint_minutes", "data.data_dir", "data.download",
    "prune.levels", "prune.dense_from",
})  # fmt: skip

T = TypeVar("T")


def completed(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with the fields it lacks at their defaults: a run stored before a field existed (its config is the
    whole config of its version) groups with today's runs of the same setting. Stored values are kept as they
    are, valid today or not. (`runtime.seed_scheme`, whose default an older run does not share, is not part of
    the experiment: NOT_THE_EXPERIMENT.)"""
    return _merged(_defaults(), config)


@functools.cache
def _defaults() -> dict[str, Any]:
    from ..config import ExperimentConfig  # pydantic's models: only where runs are grouped

    return ExperimentConfig().model_dump(mode="json")


def _merged(defaults: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """`stored` over `defaults`, section by section (a key of `stored` wins, whatever its value)."""
    merged = dict(defaults)
    for key, value in stored.items():
        inner = defaults.get(key)
        merged[key] = _merged(inner, value) if isinstance(inner, dict) and isinstance(value, dict) else value
    return merged


def experiment_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The flattened config, completed, without the fields that are not the experiment."""
    return {k: v for k, v in flatten(completed(config)).items() if k not in NOT_THE_EXPERIMENT}


def setting_key(config: dict[str, Any]) -> str:
    """What a run measures, as canonical JSON: equal keys are seeds of one setting."""
    return json.dumps(experiment_fields(config), sort_keys=True, default=str)


def group_by_setting(items: Sequence[T], config_of: Callable[[T], dict[str, Any]] | None = None) -> list[list[T]]:
    """Items (run records, or sweep members with `config_of`) grouped by setting, in order of first appearance."""
    config_of = config_of or (lambda record: as_run_record(record).config)
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(setting_key(config_of(item)), []).append(item)
    return list(groups.values())


def differing_fields(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The experiment fields whose values are not the same in all `configs`, sorted."""
    flats = [experiment_fields(c) for c in configs]
    keys = sorted({k for flat in flats for k in flat})
    return [k for k in keys if len({json.dumps(flat.get(k), default=str) for flat in flats}) > 1]


def runs_per_round(records: Sequence[RunRecord]) -> int:
    """A group's n: how many of its runs measured a round, at most (the one-shot levels of one seed, run as
    separate runs, are one curve of n = 1); the number of runs when none has rounds yet."""
    counts: dict[Any, int] = {}
    for record in records:
        for result in record.rounds:
            if isinstance(result, dict):
                counts[result.get("round")] = counts.get(result.get("round"), 0) + 1
    return max(counts.values(), default=len(records))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    count = len(values)
    mean = sum(values) / count
    if count < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((value - mean) ** 2 for value in values) / (count - 1))
