"""`sdd-tui sweep --levels 1-16`: the levels of a one-shot run as sweep members, on separate devices.

For each grid point and seed, one member trains the dense round only (`prune.levels = []`, named
`level=0`) and one member per level reuses it (`prune.levels = [r]`, `prune.dense_from = <the dense
member's run id>`, named `level=r`). The sweep runs in two phases: the dense members, then the
levels whose dense member finished (as many at once as the engine has slots; a level whose dense
member failed is not started, and the sweep ends `failed`). The members of one grid point and seed
are one setting (core.history.grouping), so `plot --sweep` and `sweeps show` draw them as one curve.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import validate_config
from ..errors import SddError
from ..history.records import SweepRecord
from ..history.store import Store
from ..paths import new_run_id
from ..ranges import parse_ranges
from .sweep import MAX_MEMBERS, member_runs, member_status

RunPhase = Callable[[list[dict[str, Any]], bool], str]  # (members, create the sweep record) -> sweep status


def parse_levels(text: str, members: list[dict[str, Any]] | None = None) -> list[int]:
    """`1-16`, `1,2,5` or a mix -> increasing distinct levels >= 1 (and, given the members, at most the
    largest `prune.rounds` among them: each member checks its own)."""
    rounds = [m["config"]["prune"].get("rounds") for m in members or []]
    high = max((r for r in rounds if isinstance(r, int)), default=None)
    return parse_ranges(text, "--levels", high=high, what="pruning round (prune.rounds)")


def _fresh_ids(count: int, taken: set[str]) -> list[str]:
    ids: list[str] = []
    while len(ids) < count:
        candidate = new_run_id()
        if candidate not in taken and candidate not in ids:
            ids.append(candidate)
    return ids


def _member(member: dict[str, Any], run_id: str, level: int, prune: dict[str, Any], dense: str | None) -> dict:
    """`member` (named `... seed=S`) as the member of one level: `... level=L seed=S`, its config checked."""
    head, _, _ = member["name"].rpartition(f" seed={member['seed']}")
    name = f"{head} level={level} seed={member['seed']}"
    config = {**member["config"], "name": name[:80], "prune": {**member["config"]["prune"], **prune}}
    validate_config(config, f"--levels {level}")  # one-shot only, levels within prune.rounds: one line
    return {**member, "run_id": run_id, "name": name, "config": config, "level": level, "dense_member": dense}


def with_levels(members: list[dict[str, Any]], levels: list[int]) -> list[dict[str, Any]]:
    """Each member (a grid point and seed) as its dense member and one member per level; validated."""
    if any(m["config"]["prune"].get("schedule") != "oneshot" for m in members):
        raise SddError("--levels needs prune.schedule=oneshot (one-shot rounds do not depend on each other); "
                       "add --set prune.schedule=oneshot")
    count = len(members) * (len(levels) + 1)
    if count > MAX_MEMBERS:
        raise SddError(f"the sweep would have {count:,} members, more than {MAX_MEMBERS:,}; give fewer --levels")
    ids = iter(_fresh_ids(len(members) * len(levels), {m["run_id"] for m in members}))
    expanded = []
    for member in members:
        dense = _member(member, member["run_id"], 0, {"levels": []}, None)
        expanded.append(dense)
        expanded += [_member(member, next(ids), level, {"levels": [level], "dense_from": dense["run_id"]},
                             dense["run_id"]) for level in levels]
    return expanded


def run_in_phases(store: Store, sweep: SweepRecord, members: list[dict[str, Any]], run_phase: RunPhase,
                  say: Callable[[str], None], create: bool) -> str:
    """Run `members` (all, or the unfinished of a resumed sweep): the dense members first, then the levels
    whose dense member finished. Without levels, one phase. Returns the sweep's status."""
    if not any(m.get("dense_member") for m in members):
        return run_phase(members, create)
    dense = [m for m in members if not m.get("dense_member")]
    status = None
    if dense:
        status, create = run_phase(dense, create), False
    records = member_runs(store, [m for m in sweep.members if not m.get("dense_member")])
    statuses = {run_id: member_status(record) for run_id, record in records.items()}
    if any(statuses.get(m["run_id"], "queued") not in ("finished", "failed") for m in dense):
        return status or "stopped"  # stopped (Ctrl-C) or still queued: the levels wait for `--resume`
    ready = [m for m in members if m.get("dense_member") and statuses.get(m["dense_member"]) == "finished"]
    if len(ready) < len(members) - len(dense):
        say(f"{len(members) - len(dense) - len(ready)} level member(s) not started: their dense member did not finish")
    return run_phase(ready, create) if ready else (status or "failed")
