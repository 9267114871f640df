"""One table of many runs: a row per run and round (and with `epochs`, a row per epoch from events.jsonl).

Columns: the run's own fields, every config field by its dotted name (`noise.rate`), every round metric
(a branch's as `reinit.test_acc`), the round's phase, and the provenance as `provenance.torch`...
`sdd_tui.load_runs` returns these rows (or a pandas DataFrame); `sdd-tui runs export` writes them as CSV.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..events import EpochEnded, event_from_json
from ..history.grouping import flatten
from ..history.query import RunQuery
from ..history.records import RunRecord
from .phases import detect_phases, event_of_round, phase_of_round

CONFIG_SKIPPED = ("name", "description")  # the run's name is a column already; a description is prose


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def run_columns(record: RunRecord, status: str) -> dict[str, Any]:
    """The columns every row of a run shares: its fields, config and provenance."""
    columns: dict[str, Any] = {
        "run_id": record.id, "name": record.name, "status": status, "preset": record.preset,
        "sweep": record.sweep, "tags": ",".join(record.tags),
        "note": record.note or "", "started": record.started, "ended": record.ended,
    }
    for key, value in flatten(record.config).items():
        if key not in CONFIG_SKIPPED:
            columns[key] = _cell(value)
    for key, value in flatten(record.provenance or {}, "provenance.").items():
        columns[key] = _cell(value)
    return columns


def round_rows(record: RunRecord, status: str) -> list[dict[str, Any]]:
    shared = run_columns(record, status)
    rounds = sorted(record.rounds, key=lambda r: r["round"])
    phases = detect_phases(rounds)
    rows = []
    for result in rounds:
        row = {**shared, "row": "round", "phase": phase_of_round(phases, result["round"]),
               "phase_event": event_of_round(phases, result["round"])}
        row.update({key: _cell(value) for key, value in flatten(result).items()})
        rows.append(row)
    return rows


def epoch_rows(record: RunRecord, status: str, events: Path) -> list[dict[str, Any]]:
    """A row per epoch of every round and branch; a resumed run's repeated epochs count once (the last)."""
    shared = run_columns(record, status)
    epochs: dict[tuple[int, str, int], EpochEnded] = {}
    try:
        lines = events.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        if '"EpochEnded"' not in line:
            continue
        try:
            event = event_from_json(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
        epochs[(event.round, event.branch, event.epoch)] = event
    rows = []
    for (round_index, branch, epoch), event in sorted(epochs.items()):
        rows.append({**shared, "row": "epoch", "round": round_index, "branch": branch, "epoch": epoch,
                     "train_loss": event.train_loss, "train_acc": event.train_acc, "test_loss": event.test_loss,
                     "test_acc": event.test_acc, "lr": event.lr, "seconds": event.seconds,
                     "samples_per_s": event.samples_per_s})
    return rows


def load_rows(store, query: RunQuery, epochs: bool = False) -> list[dict[str, Any]]:
    """The table of every run `query` selects, oldest first."""
    from ..history.store import display_status

    docs = list(reversed(query.select(store.summaries())))
    rows: list[dict[str, Any]] = []
    for doc in docs:
        record = RunRecord.parse(store.full_record(doc))  # a store summary, completed from its folder
        status = display_status(record)
        rows += round_rows(record, status)
        if epochs:
            rows += epoch_rows(record, status, store.events_path(record.id))
    return rows


def csv_of(rows: list[dict[str, Any]]) -> str:
    """CSV with every column any row has, in the order they first appear."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns) or ["run_id"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
