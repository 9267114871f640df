"""Stable views of a stored run: the `runs show --json` object, CSV rows and one-line summaries.

Scripts depend on `run_json`: keys are only ever added, never renamed or removed.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..history.records import RunRecord, as_run_record
from .phases import detect_phases, event_of_round, phase_of_round

ROUND_KEYS = (
    "round", "sparsity", "remaining", "test_acc", "best_test_acc", "train_acc",
    "noisy_memorized", "noisy_true_acc", "learning_distance", "seconds",
)  # fmt: skip
EXTRA_ROUND_KEYS = ("total", "test_loss", "train_loss", "best_epoch")
# A round's other branches, each stored under its key in the round's result: the reinit branch
# (retrain.compare_reinit, or `sdd-tui branch ID reinit`), the ticket (retrain.mode=reinit reports the
# reinit branch itself) and random masks of the same layer-wise sparsity (`sdd-tui branch ID random-prune`).
BRANCHES = ("reinit", "ticket", "random_prune")
BRANCH_LABELS = {"reinit": "reinit", "ticket": "ticket", "random_prune": "random prune"}


def round_view(result: dict[str, Any]) -> dict[str, Any]:
    view = {key: result.get(key) for key in ROUND_KEYS}
    view.update({key: result[key] for key in EXTRA_ROUND_KEYS if key in result})
    for branch in BRANCHES:
        if branch in result:
            view[branch] = result[branch]
    return view


def branch_phases(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Phases of each branch's curve (reinit, the ticket in reinit mode, random prune), keyed by branch; {} if none."""
    found = {}
    for branch in BRANCHES:
        curve = [{"round": r["round"], "sparsity": r.get("sparsity"), **r[branch]}
                 for r in rounds if isinstance(r.get(branch), dict)]
        if curve:
            found[branch] = detect_phases(curve)
    return found


def run_json(record: RunRecord, status: str | None = None) -> dict[str, Any]:
    """The documented JSON object of one run (accuracies and sparsity as fractions in [0, 1])."""
    rounds = sorted(record.rounds, key=lambda r: r["round"])
    return {
        "id": record.id,
        "name": record.name,
        "status": status or record.status,
        "preset": record.preset,
        "device": record.device,
        "started": record.started,
        "ended": record.ended,
        "error": record.error or None,
        "config": record.config,
        "rounds": [round_view(r) for r in rounds],
        "phases": detect_phases(rounds),
        "branch_phases": branch_phases(rounds),
        "analyses": record.analyses or {},
        "tags": record.tags,
        "note": record.note or "",
        "sweep": record.sweep,
        "provenance": record.provenance or {},
    }


def summary(record: RunRecord | dict[str, Any]) -> dict[str, Any]:
    """What tells a run apart in one line: its accuracies, rounds, seed, noise and retrain mode (`summary_of`).

    `record` is a run record (a dict is parsed while callers move to RunRecord), or a row of
    `Store.summaries()` (a dict of another shape, no rounds: its summary was computed when it was stored)."""
    if isinstance(record, dict) and "rounds" not in record and isinstance(record.get("summary"), dict):
        return dict(record["summary"])  # a listed run: no run folder read
    record = as_run_record(record)
    if "rounds" not in record.model_fields_set and isinstance(record.summary, dict):  # its folder is gone
        return dict(record.summary)
    return summary_of(record.config, record.rounds)


def summary_of(config: dict[str, Any], rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """`summary` of a run's config and rounds (the store computes it from a run folder's two files).

    Rounds are counted one way on every face: `rounds_total` pruning rounds after the dense round 0
    (prune.rounds), and `rounds_done` the last finished one ("30/30": finished; "0/30": at most the
    dense round is done), as the progress line's "round r/R" counts them."""
    rounds = sorted(rounds, key=lambda r: r["round"])
    dense = rounds[0]["test_acc"] if rounds and rounds[0]["round"] == 0 else None
    scored = [r for r in rounds if r.get("test_acc") is not None]
    best = max(scored, key=lambda r: r["test_acc"]) if scored else None
    noise = config.get("noise", {})
    return {
        "rounds_done": rounds[-1]["round"] if rounds else 0,
        "rounds_total": _last_round(config.get("prune", {})),
        "dense_acc": dense,
        "best_acc": best["test_acc"] if best else None,
        "best_sparsity": best["sparsity"] if best else None,
        "dataset": config.get("data", {}).get("name"),
        "model": config.get("model", {}).get("name"),
        "noise": f"{noise.get('kind', '?')} {noise.get('rate', 0):.0%}",
        "noise_kind": noise.get("kind"),
        "noise_rate": noise.get("rate"),
        "seed": config.get("runtime", {}).get("seed"),
        "retrain_mode": config.get("retrain", {}).get("mode"),
    }


def _last_round(prune: dict[str, Any]) -> int:
    """The last round a run trains: prune.rounds, or its last one-shot level (a run of some levels)."""
    levels = prune.get("levels")
    return max(levels, default=0) if isinstance(levels, list) else prune.get("rounds", 0)


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, into)
    elif isinstance(value, list):
        into[prefix] = json.dumps(value)
    else:
        into[prefix] = value


def csv_text(record: RunRecord) -> str:
    """One CSV row per round: run columns (with the round's phase and event), its metrics, then every config field."""
    config_columns: dict[str, Any] = {}
    _flatten("", record.config, config_columns)
    rows = []
    view = run_json(record)
    for result in view["rounds"]:
        row: dict[str, Any] = {"run_id": record.id, "name": record.name, "status": record.status,
                               "phase": phase_of_round(view["phases"], result["round"]),
                               "phase_event": event_of_round(view["phases"], result["round"])}
        flat: dict[str, Any] = {}
        _flatten("", result, flat)
        row.update(flat)
        row.update({f"config.{k}": v for k, v in config_columns.items()})
        rows.append(row)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or ["run_id"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
