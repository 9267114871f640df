"""Stable views of a stored run: the `runs show --json` object, CSV rows and one-line summaries.

Scripts depend on `run_json`: keys are only ever added, never renamed or removed.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..history.records import RunRecord
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
