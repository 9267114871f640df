"""A dense round reused from another run (`prune.dense_from`), so that one-shot levels trained as separate
runs (a `sweep --levels` on several GPUs) share one dense network instead of each training its own.

It reads the other run's folder: `rounds/round-0.pt` (the trained dense weights, its masks and result)
and `checkpoint.pt` (the dense init, the weights at the rewind iteration, the noisy labels, and the
config they were trained with). Both are read without running code from them. The settings that make
the dense round (data, noise, model, train, the seed, and the rewind iteration when the retrain mode
rewinds) must be those of the run that reuses it; a difference is one line naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import ExperimentConfig, stored_config
from ..dotted import flatten
from ..errors import SddError
from ..paths import RunPaths
from ..retrain import RETRAIN_MODES, StartWeights
from .checkpoint import load_plain, read_round_file
from .pruning import Masks
from .run_state import Labels, state_from_payload

Weights = dict[str, torch.Tensor]
DENSE_SECTIONS = ("data.", "noise.", "model.", "train.")
NOT_THE_DENSE_ROUND = frozenset({"data.data_dir", "data.download", "train.eval_batch_size"})


@dataclass
class ReusedDense:
    """What a run takes over from another run's dense round."""

    run_id: str
    model: Weights  # trained
    masks: Masks  # all alive
    init: Weights
    rewind: Weights | None
    labels: Labels | None
    result: dict[str, Any]


def dense_fields(config: dict[str, Any], rewinds: bool) -> dict[str, Any]:
    """The flattened settings that make a dense round (what two runs must share to share one)."""
    flat = flatten(config)
    wanted = {key: value for key, value in flat.items()
              if key.startswith(DENSE_SECTIONS) and key not in NOT_THE_DENSE_ROUND}
    wanted["runtime.seed"] = flat.get("runtime.seed")
    wanted["runtime.seed_scheme"] = flat.get("runtime.seed_scheme")  # the init and data order derive from it
    if rewinds:
        wanted["retrain.rewind_iteration"] = flat.get("retrain.rewind_iteration")
    return wanted


def dense_differences(theirs: dict[str, Any], ours: ExperimentConfig) -> list[str]:
    """`field=theirs (here ours)` for each dense-round setting that differs, sorted."""
    rewinds = RETRAIN_MODES[ours.retrain.mode].weights is StartWeights.REWIND
    mine, other = dense_fields(ours.model_dump(mode="json"), rewinds), dense_fields(theirs, rewinds)
    # a field added since that run was saved has its default there (e.g. train.warmup = 0)
    other = {**dense_fields(ExperimentConfig().model_dump(mode="json"), rewinds), **other}
    text = lambda value: json.dumps(value, default=str)  # noqa: E731
    return [f"{key}={text(other.get(key))} (here {text(mine.get(key))})" for key in sorted(set(mine) | set(other))
            if text(mine.get(key)) != text(other.get(key))]


def reuse_dense(home: Path, config: ExperimentConfig, device: torch.device) -> ReusedDense:
    """Run `config.prune.dense_from`'s dense round, checked against `config`; SddError naming the fix."""
    run_id = config.prune.dense_from
    paths = RunPaths(home, run_id)
    where = f"prune.dense_from={run_id}"
    round_path = paths.round_file(0)
    if not round_path.exists() or not paths.checkpoint.exists():
        raise SddError(f"{where}: run {run_id} has no finished dense round under {paths.dir} "
                       f"(round-0.pt and checkpoint.pt); let its round 0 finish, or leave prune.dense_from out")
    fix = "use another run for prune.dense_from, or leave it out"
    payload = load_plain(paths.checkpoint, device, "checkpoint", fix)
    try:
        state = state_from_payload(payload)
    except ValueError as error:
        raise SddError(f"{paths.checkpoint} is not a checkpoint sdd-tui wrote ({error}); {fix}") from None
    theirs = stored_config(payload.get("config") or {})
    differences = dense_differences(theirs, config)
    if [d for d in differences if d.startswith("runtime.seed_scheme=")]:  # a run from before the seed tree
        scheme = theirs["runtime"]["seed_scheme"]
        fix = f"add --set runtime.seed_scheme={scheme} to draw the streams it was trained with, or {fix}"
    if differences:
        raise SddError(f"{where}: that run's dense round was trained with other settings: "
                       f"{'; '.join(differences[:3])}{' ...' if len(differences) > 3 else ''}; {fix}")
    stored = read_round_file(round_path, device)
    if RETRAIN_MODES[config.retrain.mode].weights is StartWeights.REWIND and state.rewind is None:
        raise SddError(f"{where}: run {run_id} kept no rewind weights; {fix}")
    return ReusedDense(run_id, stored["model"], stored["masks"], state.init, state.rewind, state.labels,
                       stored["result"])
