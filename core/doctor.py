"""Health checks of a store home, and the repairs that lose nothing.

`diagnose` reads only; `repair` moves a corrupt store aside (never deleting it) and rebuilds it from
the run folders' events.jsonl, re-adds orphan run folders, and removes temporary files left by
writes that a kill interrupted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.events import RoundEnded, RunEnded, RunStarted, event_from_json
from core.store import Store, display_status, pid_alive

CORRUPT_GLOB = "store.json.corrupt-*"


@dataclass(frozen=True)
class Finding:
    problem: bool  # False: information only
    text: str


def read_store(path: Path) -> tuple[list[dict[str, Any]] | None, str]:
    """(the run records, "") or (None, why the file does not parse); a missing store has no runs."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], ""
    except (OSError, UnicodeDecodeError) as error:
        return None, f"unreadable: {error}"
    if not text.strip():
        return [], ""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"{error.msg} at line {error.lineno}"
    runs = data.get("runs", {}) if isinstance(data, dict) else None
    if not isinstance(runs, dict):
        return None, "no `runs` table"
    return [dict(record) for record in runs.values()], ""


def record_from_events(path: Path) -> dict[str, Any] | None:
    """A run record rebuilt from its events.jsonl (a line cut short by a kill is skipped)."""
    record: dict[str, Any] | None = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = event_from_json(line)
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(event, RunStarted):
            if record is None:
                record = {"id": event.run_id, "name": event.name, "preset": event.preset, "config": event.config,
                          "status": "running", "host": event.host, "pid": None, "device": event.device,
                          "versions": event.versions, "started": event.time, "ended": None, "error": "",
                          "rounds": []}
            else:
                record.update(status="running", device=event.device, ended=None, error="")
        elif record is None:
            continue
        elif isinstance(event, RoundEnded):
            record["rounds"] = sorted([r for r in record["rounds"] if r["round"] != event.round] + [event.result],
                                      key=lambda r: r["round"])
        elif isinstance(event, RunEnded):
            record.update(status=event.status, ended=event.time, error=event.error)
    return record


def _run_folders(home: Path) -> list[Path]:
    runs = home / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def _stale_temp_files(home: Path, records: list[dict[str, Any]]) -> list[Path]:
    """Temporary files of interrupted writes; those of live runs may be writes in progress."""
    live = {r["id"] for r in records if r.get("status") == "running" and pid_alive(r.get("pid"), r.get("host"))}
    found = list(home.glob(".store.json.*.tmp"))
    for folder in _run_folders(home):
        if folder.name not in live:
            found += folder.glob(".*.tmp")
    return sorted(found)


def _last_round(record: dict[str, Any]) -> str:
    rounds = record.get("rounds") or []
    return f"after round {max(r['round'] for r in rounds)}" if rounds else "before its first round ended"


def diagnose(store: Store) -> list[Finding]:
    """One finding a line: the store, corrupt copies, interrupted runs, orphan folders, leftovers."""
    home, findings = store.home, []
    with store.lock():
        records, error = read_store(store.path)
        folders = _run_folders(home)
        if records is None:
            rebuildable = sum(1 for f in folders if (f / "events.jsonl").exists())
            findings.append(Finding(True, f"store {store.path} does not parse ({error}); it is left as it is; "
                                          f"`sdd-tui doctor --repair` moves it aside and rebuilds it from the "
                                          f"events.jsonl of {rebuildable} run folder(s)"))
            records = []
        else:
            findings.append(Finding(False, f"store {store.path}: ok, {len(records)} run(s)"))
        temp_files = _stale_temp_files(home, records)
    for copy in sorted(home.glob(CORRUPT_GLOB)):
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(copy.stat().st_mtime))
        findings.append(Finding(False, f"corrupt copy {copy.name} ({copy.stat().st_size} bytes, {stamp}): kept from a "
                                       f"store that failed to parse; delete it once `sdd-tui runs` looks right"))
    findings += _run_findings(store, records, folders if error == "" else [])
    for path in temp_files:
        findings.append(Finding(True, f"leftover temporary file {path} from an interrupted write; "
                                      f"`sdd-tui doctor --repair` deletes it"))
    return findings


def _run_findings(store: Store, records: list[dict[str, Any]], folders: list[Path]) -> list[Finding]:
    findings, known = [], {r["id"] for r in records}
    for record in sorted(records, key=lambda r: r.get("started") or 0):
        run_id, status = record["id"], display_status(record)
        has_folder = store.run_dir(run_id).is_dir()
        if status == "interrupted":
            findings.append(Finding(True, f"run {run_id} was interrupted (process {record.get('pid')} on "
                                          f"{record.get('host')} is gone) {_last_round(record)}; continue it with "
                                          f"`sdd-tui resume {run_id}`"))
        elif status in ("stopped", "failed") and has_folder:
            findings.append(Finding(False, f"run {run_id} {status} {_last_round(record)}; "
                                           f"`sdd-tui resume {run_id}` continues it"))
        if not has_folder:
            findings.append(Finding(False, f"run {run_id} has no folder {store.run_dir(run_id)}; its rounds are in "
                                           f"the store but it cannot be resumed"))
    for folder in folders:
        if folder.name in known:
            continue
        if (folder / "events.jsonl").exists():
            findings.append(Finding(True, f"orphan folder {folder}: no record in the store; "
                                          f"`sdd-tui doctor --repair` re-adds it from its events.jsonl"))
        else:
            findings.append(Finding(True, f"orphan folder {folder}: no record and no events.jsonl; "
                                          f"delete it if you do not need its files"))
    return findings


def repair(store: Store) -> list[str]:
    """Fix what can be fixed without losing anything; returns one line per action."""
    actions: list[str] = []
    with store.lock():
        records, _error = read_store(store.path)
        if records is None:
            actions.append(_move_aside(store.path))
            records = []
        known = {r["id"] for r in records}
        for folder in _run_folders(store.home):
            events = folder / "events.jsonl"
            if folder.name in known or not events.exists():
                continue
            record = record_from_events(events)
            if record is not None and record["id"] == folder.name:
                store.create_run(record)
                actions.append(f"re-added run {record['id']} ({record['status']}, {len(record['rounds'])} "
                               f"round(s)) from {events}")
        for path in _stale_temp_files(store.home, records):
            path.unlink(missing_ok=True)
            actions.append(f"deleted leftover temporary file {path}")
    return actions


def _move_aside(path: Path) -> str:
    """Keep the corrupt store's bytes under a corrupt-* name (one copy is enough), then free its name."""
    content = path.read_bytes()
    for copy in path.parent.glob(CORRUPT_GLOB):
        if copy.read_bytes() == content:
            path.unlink()
            return f"moved the corrupt store aside (its bytes are kept in {copy.name})"
    target = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    path.rename(target)
    return f"moved the corrupt store aside to {target.name}"
