"""store.json of the first format (every record holding its config and rounds) to the second (a small
summary per run in store.json; config, rounds and the rest in the run's folder).

`convert` is also the bulk import: it writes every run folder without an fsync each and syncs once,
then the caller replaces store.json atomically. Records of the wrong shape are kept as they are, for
`sdd-tui doctor` to report and `doctor --repair` to fix.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..atomic import write_json
from ..errors import SddError
from ..paths import RunPaths, is_valid_id, sweep_file
from .run_folder import RunFolder
from .run_index import config_settings, old_record_problem, split_record, summary_doc

FORMAT = 2
META_TABLE = "meta"


def meta_of(data: dict[str, Any]) -> dict[str, Any]:
    """The store's meta document ({} for a store of the first format)."""
    table = data.get(META_TABLE)
    if isinstance(table, dict):
        for doc in table.values():
            if isinstance(doc, dict):
                return doc
    return {}


def needs_conversion(data: dict[str, Any]) -> bool:
    """Whether `data` is certainly a store of the first format (see `format_problem`)."""
    return META_TABLE not in data and format_problem(data) is None


def format_problem(data: dict[str, Any]) -> str | None:
    """Why the store's format cannot be told for certain, or None (the current format or the first).

    Only a store whose meta says format 2 is read as the current one, and only a store with no meta table whose
    every run record holds its config or rounds inline (no `summary`) as the first: a store.json that lost its
    meta, or says format "2" or 3, was once taken for the first format and every run folder was rewritten empty.
    An existing store.json of `{}` cannot be told either (sdd-tui never writes one); a missing one is a new home."""
    if META_TABLE in data:
        table = data[META_TABLE]
        docs = list(table.values()) if isinstance(table, dict) else []
        meta = docs[0] if len(docs) == 1 and isinstance(docs[0], dict) else None
        if meta is None:
            return "its meta table does not hold one record"
        found = meta.get("format")
        if isinstance(found, int) and not isinstance(found, bool) and found > FORMAT:
            return f"it is of format {found}, written by a newer sdd-tui (this one reads format {FORMAT})"
        if found != FORMAT or isinstance(found, bool):
            return f"its meta says format {json.dumps(found)[:40]} (format {FORMAT} is expected)"
        if not isinstance(meta.get("baseline", {}), dict):
            return "its meta's baseline is not an object"
        return None
    runs = data.get("runs")
    records = list(runs.values()) if isinstance(runs, dict) else []
    old = [r for r in records if isinstance(r, dict) and ("config" in r or "rounds" in r) and "summary" not in r]
    if not old or any(isinstance(r, dict) and ("summary" in r or "settings" in r) for r in records):
        return "it has no meta table to say its format"
    return None


def with_meta(data: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    data[META_TABLE] = {"1": {"format": FORMAT, "baseline": baseline}}
    return data


def first_baseline(records: list[Any]) -> dict[str, Any]:
    """The flattened config of the first convertible record that has one."""
    for record in records:
        if old_record_problem(record) is None and record.get("config"):
            return config_settings(record["config"])
    return {}


def convert(data: dict[str, Any], home: Path | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the store's data in the current format, the convertible records by id).

    With `home`, every convertible record's run folder gets its run.json and rounds.json (synced once
    at the end); without, nothing is written (a read-only home is read as if converted)."""
    runs = data.get("runs") if isinstance(data.get("runs"), dict) else {}
    baseline = first_baseline(list(runs.values()))
    converted: dict[str, Any] = {}
    records: dict[str, dict[str, Any]] = {}
    for key, record in runs.items():
        if old_record_problem(record) is not None:
            converted[key] = record  # kept for doctor to report and repair
            continue
        meta, rounds = split_record(record)
        if home is not None:
            try:
                RunFolder(RunPaths(home, meta["id"])).write(meta, rounds, durable=False)
            except SddError:  # its folder is a symbolic link: kept as it is, for doctor to report
                converted[key] = record
                continue
        converted[key] = summary_doc(meta, rounds, baseline)
        records[meta["id"]] = record
    new = {name: table for name, table in data.items() if name not in ("runs", META_TABLE)}
    new["runs"] = converted
    if home is not None:
        write_sweep_files(home, new.get("sweeps"))
        os.sync()  # every folder file is on disk before store.json stops holding the rounds
    return with_meta(new, baseline), records


def write_sweep_files(home: Path, sweeps: Any) -> None:
    for sweep in (sweeps or {}).values() if isinstance(sweeps, dict) else ():
        if isinstance(sweep, dict) and is_valid_id(sweep.get("id")):
            write_json(sweep_file(home, sweep["id"]), sweep, durable=False)


def keep_backup(path: Path) -> Path:
    """A copy of the first-format store.json next to it (never overwriting an earlier backup)."""
    target = path.with_name(f"{path.name}.format1-backup")
    stamp = 1
    while target.exists():
        target = path.with_name(f"{path.name}.format1-backup-{stamp}")
        stamp += 1
    shutil.copy2(path, target)
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())
    return target
