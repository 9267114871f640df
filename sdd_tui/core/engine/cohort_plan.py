"""Which runs can train as one packed cohort, and how a sweep's members split into cohorts (pure).

Members pack when they share what makes their steps line up: the network's shape, the data, the
epoch and round schedule (epochs, batch size, rounds, the iteration a pruned round starts at), the
device and the checkpoint settings. They may differ in seed, noise, pruning method, scope and
fraction, retrain mode (when its round start is the same), lr, momentum, weight decay and LR steps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import ExperimentConfig
from ..registry import MODELS
from ..retrain import RETRAIN_MODES

DEFAULT_PACK_SIZE = 32

# (what rules a config out, why) in the order they are checked; the first that applies is the reason
UNPACKABLE: list[tuple[Callable[[ExperimentConfig], bool], Callable[[ExperimentConfig], str]]] = [
    (lambda c: c.model.name not in MODELS.names(packable=True),
     lambda c: f"model.name={c.model.name}: only the MLP family ({', '.join(MODELS.names(packable=True))}) packs"),
    (lambda c: c.train.optimizer != "sgd",
     lambda c: f"train.optimizer={c.train.optimizer}: a cohort steps SGD only"),
    (lambda c: not c.runtime.fast,
     lambda c: "runtime.fast=false: the standard recipe trains one run at a time"),
    (lambda c: c.runtime.compile,
     lambda c: "runtime.compile=true: a compiled network trains alone"),
    (lambda c: RETRAIN_MODES[c.retrain.mode].reports_reinit or c.retrain.compare_reinit,
     lambda c: "a reinit branch each round (retrain.mode=reinit or retrain.compare_reinit): a cohort trains "
               "the main branch only"),
]


def unpackable_reason(config: ExperimentConfig) -> str | None:
    """Why this run cannot join any cohort, or None."""
    return next((reason(config) for rules_out, reason in UNPACKABLE if rules_out(config)), None)


def pack_fields(config: ExperimentConfig) -> dict[str, Any]:
    """What members of one cohort must share, field by field."""
    rule = RETRAIN_MODES[config.retrain.mode]
    train, runtime = config.train, config.runtime
    return {
        **{f"data.{k}": v for k, v in config.data.model_dump(mode="json").items()},
        **{f"model.{k}": v for k, v in config.model.model_dump(mode="json").items()},
        "train.epochs": train.epochs, "train.batch_size": train.batch_size,
        "train.eval_batch_size": train.eval_batch_size, "train.augment": train.augment,
        "prune.rounds": config.prune.rounds, "prune.layers": config.prune.layers,
        "prune.schedule": config.prune.schedule, "prune.levels": config.prune.levels,  # which rounds train
        "prune.dense_from": config.prune.dense_from,  # a reused dense round: the members start at round 1
        "round start (retrain.rewind_iteration)": config.retrain.rewind_iteration if rule.rewind_schedule else 0,
        "runtime.device": runtime.device, "runtime.threads": runtime.threads, "runtime.amp": runtime.amp,
        "runtime.checkpoint_every": runtime.checkpoint_every, "runtime.checkpoint_minutes": runtime.checkpoint_minutes,
    }


def pack_key(config: ExperimentConfig) -> str | None:
    """Equal for runs that can train in one cohort; None for a run that trains alone."""
    if unpackable_reason(config) is not None:
        return None
    return json.dumps(pack_fields(config), sort_keys=True)


def differences(a: ExperimentConfig, b: ExperimentConfig) -> list[str]:
    """The shared fields in which two packable configs differ."""
    first, second = pack_fields(a), pack_fields(b)
    return [name for name in first if first[name] != second[name]]


# ---------------------------------------------------------------------------- a sweep's cohorts


@dataclass
class PackPlan:
    """Cohorts (lists of members, two or more each) and the members that run alone, with why."""

    cohorts: list[list[dict[str, Any]]] = field(default_factory=list)
    alone: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def jobs(self, members: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Every cohort and every lone member as a job, in the order of their first member."""
        position = {m["run_id"]: i for i, m in enumerate(members)}
        jobs = [*self.cohorts, *([member] for member, _ in self.alone)]
        return sorted(jobs, key=lambda job: position[job[0]["run_id"]])

    def lines(self) -> list[str]:
        """What the sweep says about its packing: each cohort, and each member left out with why."""
        sizes = " + ".join(str(len(c)) for c in self.cohorts) or "none"
        lines = [f"packed: {len(self.cohorts)} cohort(s) ({sizes} members), {len(self.alone)} member(s) alone"]
        for number, cohort in enumerate(self.cohorts, 1):
            lines.append(f"  cohort {number}: " + ", ".join(m["run_id"] for m in cohort))
        for member, reason in self.alone:
            lines.append(f"  alone: {member['run_id']}  {member['name']}: {reason}")
        return lines


def split_evenly(items: list, parts: int) -> list[list]:
    size, extra = divmod(len(items), parts)
    chunks, first = [], 0
    for part in range(parts):
        count = size + (1 if part < extra else 0)
        chunks.append(items[first : first + count])
        first += count
    return chunks


def plan_cohorts(members: list[dict[str, Any]], configs: list[ExperimentConfig], slots: int = 1,
                 pack_size: int = DEFAULT_PACK_SIZE) -> PackPlan:
    """Group members that can pack; split a group into enough cohorts to keep `slots` busy (each of two or
    more members) and none larger than `pack_size`."""
    plan = PackPlan()
    groups: dict[str, list[tuple[dict[str, Any], ExperimentConfig]]] = {}
    for member, config in zip(members, configs):
        reason = unpackable_reason(config)
        if reason:
            plan.alone.append((member, reason))
        else:
            groups.setdefault(pack_key(config), []).append((member, config))
    for group in groups.values():
        if len(group) == 1:
            plan.alone.append((group[0][0], _lone_reason(group[0][1], groups)))
            continue
        parts = max(math.ceil(len(group) / max(pack_size, 1)), min(slots, len(group) // 2))
        for chunk in split_evenly([member for member, _ in group], parts):
            if len(chunk) > 1:
                plan.cohorts.append(chunk)
            else:
                plan.alone.extend((member, "a cohort of one (--pack-size 1)") for member in chunk)
    return plan


def _lone_reason(config: ExperimentConfig, groups: dict[str, list]) -> str:
    others = [g for g in groups.values() if g[0][1] is not config]
    if not others:
        return "no other member can pack with it"
    differing = differences(config, max(others, key=len)[0][1])
    return f"no other member shares its {', '.join(differing[:3])}"
