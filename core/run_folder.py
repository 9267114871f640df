"""The run folder's half of a run record: `run.json` (everything but the rounds) and `rounds.json`.

A round's end touches only these files (never store.json), so recording a round costs the same with
ten runs in the store as with ten thousand. Both files are written atomically under the folder's own
lock; the folder is the truth, the store's summary (core/run_index.py) is derived from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.atomic import hold, write_json
from core.errors import SddError
from core.paths import RunPaths

LOCK_TIMEOUT_S = 60.0


def read_json_file(path: Path) -> Any:
    """The parsed file; None when it is missing; SddError naming the fix when it does not parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise SddError(f"{path} is unreadable ({error}); `sdd-tui doctor` says how to recover") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SddError(f"{path} is corrupt ({error.msg} at line {error.lineno}); "
                       f"`sdd-tui doctor --repair` rebuilds it from the run's events.jsonl") from None


def is_round(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("round"), int)


def merge_round(rounds: list[dict[str, Any]], result: dict[str, Any]) -> list[dict[str, Any]]:
    """`rounds` with `result` in its place: an earlier copy of the same round (after a resume) is replaced."""
    return sorted([r for r in rounds if r["round"] != result["round"]] + [result], key=lambda r: r["round"])


class RunFolder:
    """Reads and atomic writes of one run folder's record files."""

    def __init__(self, paths: RunPaths, lock_timeout: float = LOCK_TIMEOUT_S):
        self.paths = paths
        self.lock_timeout = lock_timeout

    def exists(self) -> bool:
        return self.paths.dir.is_dir()

    def read_meta(self) -> dict[str, Any] | None:
        meta = read_json_file(self.paths.record)
        if meta is not None and not isinstance(meta, dict):
            raise SddError(f"{self.paths.record} is not a run record; `sdd-tui doctor --repair` rebuilds it")
        return meta

    def read_rounds(self) -> list[dict[str, Any]]:
        rounds = read_json_file(self.paths.rounds)
        if rounds is None:
            return []
        if not isinstance(rounds, list) or not all(is_round(r) for r in rounds):
            raise SddError(f"{self.paths.rounds} is not a list of rounds; `sdd-tui doctor --repair` rebuilds it")
        return rounds

    def write(self, meta: dict[str, Any], rounds: list[dict[str, Any]], durable: bool = True) -> None:
        """Both files at once (a new run, a migration, a repair); the folder is created if missing."""
        self.paths.dir.mkdir(parents=True, exist_ok=True)
        with self._guard():
            write_json(self.paths.rounds, rounds, durable)
            write_json(self.paths.record, meta, durable)

    def update_meta(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """run.json with `fields` set; None (nothing written) when the folder or its record is gone."""
        if not self.paths.record.exists():
            return None
        with self._guard():
            meta = self.read_meta()
            if meta is None:
                return None
            meta.update(fields)
            write_json(self.paths.record, meta)
        return meta

    def add_round(self, result: dict[str, Any]) -> None:
        """Store a round's result (the hot path: once per round, in the training thread)."""
        if not self.paths.record.exists():
            raise KeyError(self.paths.run_id)
        with self._guard():
            write_json(self.paths.rounds, merge_round(self.read_rounds(), result))

    def _guard(self):
        from filelock import FileLock

        return hold(FileLock(str(self.paths.lock), timeout=self.lock_timeout), self.paths.dir)
