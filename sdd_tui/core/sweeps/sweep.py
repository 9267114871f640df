"""Sweeps: every combination of a grid of settings times a list of seeds, each member an ordinary run.

Pure parts (no store, no processes): parsing `--seeds` and `--grid`, expanding them into validated
member configs with readable names, and folding the members' rounds into mean/std curves per grid
point. The store parts: the sweep record, the recorder that tags member runs, and `sweep_curves`.
Engines that run the members live in core/sweeps/sweep_local.py and core/sweeps/sweep_ray.py.
"""

from __future__ import annotations

import itertools
import math
import os
import shlex
import socket
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..config import ExperimentConfig, override, resolve_config
from ..errors import SddError
from ..events import Event, RunStarted
from ..history.grouping import NOT_THE_EXPERIMENT, group_by_setting, mean_std
from ..history.records import RunRecord, SweepRecord
from ..history.store import Store, StoreRecorder, display_status

ENGINES = ("local", "ray")
METRICS = (
    "test_acc", "best_test_acc", "train_acc", "noisy_memorized", "noisy_true_acc",
    "learning_distance", "test_loss", "train_loss",
)  # fmt: skip
GRID_EXAMPLE = "e.g. --grid noise.rate=0.2,0.4,0.8"

# ---------------------------------------------------------------------------- parsing


MAX_SEEDS = 1000  # a sweep of more seeds is a typo, not an experiment
MAX_MEMBERS = 10_000


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` or `0-4` (or a mix) -> distinct seeds in the order given."""
    seeds: list[int] = []
    for part in [p.strip() for p in text.split(",")]:
        low, dash, high = part.partition("-")
        try:
            bounds = (int(low), int(high)) if dash and low else (int(part), int(part))
        except ValueError:
            raise SddError(f"--seeds {text!r}: expected seeds like 0,1,2 or 0-4") from None
        if bounds[1] - bounds[0] + 1 + len(seeds) > MAX_SEEDS:
            raise SddError(f"--seeds {text!r}: at most {MAX_SEEDS} seeds in one sweep; give a shorter range")
        chunk = list(range(bounds[0], bounds[1] + 1))
        if not chunk or any(seed < 0 for seed in chunk):
            raise SddError(f"--seeds {text!r}: seeds are integers >= 0, ranges go low-high (0-4)")
        seeds.extend(chunk)
    if len(set(seeds)) != len(seeds):
        raise SddError(f"--seeds {text!r}: a seed is listed twice; list each once")
    return seeds


def split_values(text: str) -> list[str]:
    """Split `v1,v2,...` at commas outside brackets and quotes, so `[300,100],[64]` is two values."""
    values, current, depth, quote = [], "", 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += char
    values.append(current.strip())
    return values


def _check_grid_key(key: str) -> None:
    """A grid key must name one config field (section.field); runtime.seed belongs to --seeds."""
    parts = key.split(".")
    model: type[BaseModel] = ExperimentConfig
    for index, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            where = f"section {'.'.join(parts[:index])!r}" if index else "the top level"
            raise SddError(f"--grid {key}: unknown field {part!r} in {where}; allowed: {', '.join(fields)}")
        annotation = fields[part].annotation
        is_section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if index < len(parts) - 1 and not is_section:
            raise SddError(f"--grid {key}: {part!r} is a field, not a section; {GRID_EXAMPLE}")
        if index == len(parts) - 1 and is_section:
            raise SddError(f"--grid {key}: {part!r} is a section; name one of its fields, {GRID_EXAMPLE}")
        model = annotation
    if key == "runtime.seed":
        raise SddError("--grid runtime.seed: give seeds with --seeds 0,1,2 instead")
    if key == "name":
        raise SddError("--grid name: member names are made from the grid and the seed; grid another field")


def parse_grid(texts: list[str]) -> dict[str, list[str]]:
    """`["noise.rate=0.2,0.4", ...]` -> {"noise.rate": ["0.2", "0.4"], ...}, keys checked, in order."""
    grid: dict[str, list[str]] = {}
    for text in texts:
        key, equals, values_text = text.partition("=")
        key = key.strip()
        if not equals or not key:
            raise SddError(f"--grid {text!r}: expected section.field=v1,v2,...; {GRID_EXAMPLE}")
        _check_grid_key(key)
        if key in grid:
            raise SddError(f"--grid {key}: given twice; list all its values in one --grid {key}=v1,v2")
        values = split_values(values_text)
        if not all(values):
            raise SddError(f"--grid {text!r}: an empty value; {GRID_EXAMPLE}")
        if len(set(values)) != len(values):
            raise SddError(f"--grid {text!r}: a value is listed twice; list each once")
        grid[key] = values
    return grid


# ---------------------------------------------------------------------------- expansion


def member_name(base: str, point: dict[str, str], seed: int) -> str:
    return " ".join([base, *(f"{key}={value}" for key, value in point.items()), f"seed={seed}"])


def point_label(point: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in point.items())


def _unique_run_ids(count: int) -> list[str]:
    from ..paths import new_run_id

    ids: list[str] = []
    while len(ids) < count:
        candidate = new_run_id()
        if candidate not in ids:
            ids.append(candidate)
    return ids


def expand_sweep(
    preset: str | None,
    config_file: Path | None,
    overrides: list[str],
    seeds: list[int] | None,
    grid: dict[str, list[str]],
) -> list[dict[str, Any]]:
    """Every grid point times every seed as a validated member; any bad value raises before anything runs."""
    base = resolve_config(preset, config_file, overrides)
    seeds = seeds if seeds else [base.runtime.seed]
    count = math.prod(len(values) for values in grid.values()) * len(seeds)
    if count > MAX_MEMBERS:
        raise SddError(f"the sweep would have {count:,} members, more than {MAX_MEMBERS:,}; "
                       "give fewer --grid values or --seeds")
    points = [dict(zip(grid, combination)) for combination in itertools.product(*grid.values())]
    combinations = [(values, seed) for values in points for seed in seeds]
    members = []
    for (values, seed), run_id in zip(combinations, _unique_run_ids(len(combinations))):
        name = member_name(base.name, values, seed)
        settings = [f"{key}={value}" for key, value in values.items()]
        member_overrides = [*overrides, *settings, f"runtime.seed={seed}", override("name", name[:80])]
        try:
            config = resolve_config(preset, config_file, member_overrides)
        except SddError as error:
            raise SddError(f"--grid {point_label(values) or '(none)'} seed={seed}: {error}") from None
        members.append({"run_id": run_id, "name": name, "base": base.name, "point": values, "seed": seed,
                        "config": config.model_dump(mode="json")})
    return members


def member_config(member: dict[str, Any]) -> ExperimentConfig:
    from ..config import stored_config, validate_config

    # a sweep created before the seed tree keeps its members on the streams its first members drew
    return validate_config(stored_config(member["config"]), f"sweep member {member['name']}")


def new_sweep_record(
    members: list[dict[str, Any]],
    preset: str | None,
    config_file: Path | None,
    overrides: list[str],
    seeds: list[int],
    grid: dict[str, list[str]],
    engine: str,
) -> dict[str, Any]:
    """A new sweep's record, as it is stored (`SweepRecord.parse` types it)."""
    base = members[0]["base"] if members else "sweep"
    axes = f"{' x '.join(grid)} x " if grid else ""
    return {
        "id": "sw-" + _unique_run_ids(1)[0], "name": f"{base}: {axes}{len(seeds)} seed(s)", "base": base,
        "preset": preset,
        "config_file": str(config_file) if config_file else None, "overrides": list(overrides),
        "grid": grid, "seeds": seeds, "engine": engine, "members": members, "status": "created",
        "created": time.time(), "ended": None, "host": socket.gethostname(), "pid": os.getpid(),
    }


# ---------------------------------------------------------------------------- member runs in the store


class MemberRecorder(StoreRecorder):
    """A StoreRecorder that also tags the run record with its sweep id."""

    def __init__(self, store: Store, sweep_id: str):
        super().__init__(store)
        self.sweep_id = sweep_id

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted) and event.resumed_from_round >= 0 and not _has_run(self.store, event.run_id):
            # resumed from a checkpoint whose record never reached this store: record it afresh
            event = RunStarted(**{**event.__dict__, "resumed_from_round": -1})
        super().__call__(event)
        if isinstance(event, RunStarted):
            self.store.update_run(event.run_id, sweep=self.sweep_id)


def _has_run(store: Store, run_id: str) -> bool:
    return store.has_run(run_id)


def member_records(store: Store, sweep: SweepRecord) -> dict[str, RunRecord]:
    """Run records of the sweep's members that exist, by run id."""
    return member_runs(store, sweep.members)


def member_runs(store: Store, members: list[dict[str, Any]]) -> dict[str, RunRecord]:
    """Typed run records of those of `members` that exist, by run id: each parsed once, here."""
    return store.runs(member["run_id"] for member in members)


def member_status(record: RunRecord | dict[str, Any] | None) -> str:
    """A member's status from its run record, or from its summary in store.json (a dict); queued if none."""
    return "queued" if record is None else display_status(record)


def sweep_rows(store: Store) -> list[dict[str, Any]]:
    """One summary row per sweep, newest first (`sdd-tui sweeps`); members are counted from the store's
    summaries: store.json alone, no run folder is read."""
    summaries = {doc["id"]: doc for doc in store.summaries()}
    return [sweep_row(sweep, summaries) for sweep in stored_sweeps(store)]


def stored_sweeps(store: Store) -> list[SweepRecord]:
    """Every sweep, newest first, each parsed once (one of a wrong type: a one-line SddError naming it)."""
    return [SweepRecord.parse(sweep) for sweep in store.list_sweeps()]


def sweep_row(sweep: SweepRecord, summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A sweep's id, name, preset, engine, pack, status, members and finished members (`summaries`: the
    store's run summaries by id, store.json's rows), and when it was created."""
    statuses = [member_status(summaries.get(m["run_id"])) for m in sweep.members]
    return {"id": sweep.id, "name": sweep.name, "preset": sweep_base(sweep), "engine": sweep.engine,
            "pack": sweep.pack, "status": display_sweep_status(sweep), "members": len(statuses),
            "finished": statuses.count("finished"), "created": sweep.created}


def sweep_base(sweep: SweepRecord) -> str:
    """What every member starts from: the preset, else the config file's name, else the defaults."""
    if sweep.preset:
        return sweep.preset
    return Path(sweep.config_file).name if sweep.config_file else "the defaults"


def origin_command(sweep: SweepRecord) -> list[str]:
    """The `sdd-tui sweep` command line that makes this sweep again, as argv (without --home or the engine)."""
    if sweep.preset:
        command = ["sdd-tui", "sweep", "--preset", sweep.preset]
    elif sweep.config_file:
        command = ["sdd-tui", "sweep", "--config", sweep.config_file]
    else:
        command = ["sdd-tui", "sweep"]
    for override in sweep.overrides:
        command += ["--set", override]
    for key, values in (sweep.grid or {}).items():
        command += ["--grid", f"{key}={','.join(map(str, values))}"]
    command += ["--seeds", ",".join(str(s) for s in sweep.seeds)]
    if sweep.levels:
        command += ["--levels", ",".join(map(str, sweep.levels))]
    return command


def origin_text(sweep: SweepRecord) -> str:
    """'from sdd-tui sweep --preset smoke --grid noise.rate=0.2,0.4 --seeds 0,1': shell-quoted (shlex.join), so
    the part after 'from ' pasted into a shell runs exactly that command, whatever the values hold."""
    return "from " + shlex.join(origin_command(sweep))


def unfinished_members(store: Store, sweep: SweepRecord) -> list[dict[str, Any]]:
    """Members to run on `--resume`: all but the finished; one that still runs is an error."""
    records = member_records(store, sweep)
    todo = []
    for member in sweep.members:
        status = member_status(records.get(member["run_id"]))
        if status == "running":
            record = records[member["run_id"]]
            raise SddError(f"member {member['run_id']} of sweep {sweep.id} is still running "
                           f"(pid {record.pid} on {record.host}); stop it first")
        if status != "finished":
            todo.append(member)
    return todo


def sweep_status(statuses: list[str]) -> str:
    """One word for a sweep from its members' statuses."""
    if statuses and all(status == "finished" for status in statuses):
        return "finished"
    if "failed" in statuses:
        return "failed"
    if "running" in statuses:
        return "running"
    return "stopped"


def display_sweep_status(sweep: SweepRecord) -> str:
    """A sweep recorded as running whose driver process is gone shows as `interrupted`."""
    from ..history.store import pid_alive

    status = sweep.status
    if status == "running" and not pid_alive(sweep.pid, sweep.host):
        return "interrupted"
    return status


# ---------------------------------------------------------------------------- aggregation


def aggregate_rounds(runs: list[list[dict[str, Any]]], metrics: tuple[str, ...] = METRICS) -> list[dict[str, Any]]:
    """Per round across runs (seeds): `seeds` (how many runs reached it), mean sparsity, and
    `<metric>_mean` / `<metric>_std` of every metric, None where no run has a value."""
    by_round: dict[int, list[dict[str, Any]]] = {}
    for rounds in runs:
        for result in rounds:
            by_round.setdefault(result["round"], []).append(result)
    curve = []
    for round_index in sorted(by_round):
        results = by_round[round_index]
        sparsity = mean_std([r["sparsity"] for r in results])[0]
        row: dict[str, Any] = {"round": round_index, "seeds": len(results), "sparsity": sparsity,
                               "remaining_fraction": 1.0 - sparsity}
        for metric in metrics:
            values = [r[metric] for r in results if r.get(metric) is not None]
            mean, std = mean_std(values) if values else (None, None)
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean, std
        curve.append(row)
    return curve


def group_by_point(members: list[dict[str, Any]]) -> list[tuple[dict[str, str], list[dict[str, Any]]]]:
    """Members grouped by setting (core.history.grouping's rule, as `plot` and the compare screen group runs), in
    the order the grid was expanded; each group with its grid point (fields that are not the
    experiment, such as runtime.threads, left out: members differing only there are one group)."""
    groups = group_by_setting(members, config_of=lambda member: member["config"])
    return [({k: v for k, v in group[0]["point"].items() if k not in NOT_THE_EXPERIMENT}, group) for group in groups]


def sweep_curves(store: Store, sweep_id: str) -> list[dict[str, Any]]:
    """Per grid point: its label, members' run ids and seeds, and the rounds' mean/std across seeds
    (see `aggregate_rounds`). Plain data, ready for JSON or a plot."""
    sweep = store.sweep(sweep_id)
    records = member_records(store, sweep)
    curves = []
    for point, members in group_by_point(sweep.members):
        runs = [records[m["run_id"]].rounds for m in members if m["run_id"] in records]
        curves.append({"point": point, "label": point_label(point) or sweep.base or sweep.name,
                       "run_ids": [m["run_id"] for m in members],
                       "seeds": list(dict.fromkeys(m["seed"] for m in members)),  # one-shot levels share seeds
                       "rounds": aggregate_rounds(runs)})
    return curves
