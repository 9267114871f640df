"""The run folder's half of a run record: `run.json` (everything but the rounds) and `rounds.json`.

A round's end touches only these files (never store.json), so recording a round costs the same with
ten runs in the store as with ten thousand. Both files are written atomically under the folder's own
lock; the folder is the truth, the store's summary (core/history/run_index.py) is derived from it.

The lock rule: every read-modify-write of a run's files (a round, a branch, tags, a note, analyses, a
repair) holds the run's lock and reads the file again under it, so two commands on one run both keep
what they wrote. A write that would leave a file with less than it holds keeps the original beside it
(`<file>.before-repair-<time>`).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..atomic import hold, write_json
from ..errors import SddError
from ..paths import ROUNDS_DIR, RunPaths

LOCK_TIMEOUT_S = 60.0
MAX_RUN_FILE = 1 << 30  # a run file over 1 GB is refused: rounds.json of 10,000 rounds is a few MB
KEPT_SUFFIX = ".before-repair-{stamp}"


def read_capped(path: Path, limit: int = MAX_RUN_FILE) -> bytes | None:
    """A run file's bytes; None when it is missing; SddError for a link, a device, a FIFO or a file over `limit`
    (a rounds.json pointing at /dev/zero was read until MemoryError, a FIFO would block for good)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        why = "a symbolic link" if os.path.islink(path) else error.strerror or str(error)
        raise SddError(f"{path} is unreadable ({why}); refused; `sdd-tui doctor` says how to recover") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SddError(f"{path} is not a regular file; refused (replace it with the file sdd-tui wrote, or run "
                           f"`sdd-tui doctor --repair`)")
        if info.st_size > limit:
            raise SddError(f"{path} is {info.st_size / 2**30:.1f} GB, over the {limit / 2**30:.0f} GB a run file may "
                           f"be; refused (move it aside; `sdd-tui doctor --repair` rebuilds it)")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise SddError(f"{path} grew past {limit / 2**30:.0f} GB while read; refused")
    return data


def read_json_file(path: Path) -> Any:
    """The parsed file; None when it is missing; SddError naming the fix when it does not parse."""
    try:
        data = read_capped(path)
        if data is None:
            return None
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SddError(f"{path} is unreadable ({error}); `sdd-tui doctor` says how to recover") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SddError(f"{path} is corrupt ({error.msg} at line {error.lineno}); "
                       f"`sdd-tui doctor --repair` rebuilds it from the run's events.jsonl") from None


def is_round(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("round"), int)


def keep_original(path: Path, move: bool = False) -> Path:
    """A copy of `path` beside it, `<name>.before-repair-<time>` (never over an earlier copy); `move` renames it
    instead (a link, a FIFO or a file of gigabytes is set aside, never read). No command reads these again."""
    target = path.with_name(path.name + KEPT_SUFFIX.format(stamp=time.strftime("%Y%m%d-%H%M%S")))
    while target.exists() or target.is_symlink():
        target = target.with_name(target.name + "x")
    if move:
        path.rename(target)
    else:
        shutil.copy2(path, target, follow_symlinks=False)
    return target


def is_kept_original(name: str) -> bool:
    return ".before-repair-" in name


def holds_more(old: Any, new: Any) -> bool:
    """Whether `old` (a file's parsed content) holds something `new` lacks: a key, a list item, a round."""
    if isinstance(old, dict) and isinstance(new, dict):
        return any(key not in new or holds_more(value, new[key]) for key, value in old.items()
                   if value not in (None, "", [], {}))
    if isinstance(old, list) and isinstance(new, list):
        if all(is_round(r) for r in old) and all(is_round(r) for r in new):
            by_round = {r["round"]: r for r in new}
            return any(r["round"] not in by_round or holds_more(r, by_round[r["round"]]) for r in old)
        return any(item not in new for item in old)
    return False


def _regular_and_small(path: Path) -> bool:
    info = os.lstat(path)
    return stat.S_ISREG(info.st_mode) and info.st_size <= MAX_RUN_FILE


def merge_round(rounds: list[dict[str, Any]], result: dict[str, Any]) -> list[dict[str, Any]]:
    """`rounds` with `result` in its place: an earlier copy of the same round (after a resume) is replaced."""
    return sorted([r for r in rounds if r["round"] != result["round"]] + [result], key=lambda r: r["round"])


class RunFolder:
    """Reads and atomic writes of one run folder's record files."""

    def __init__(self, paths: RunPaths, lock_timeout: float = LOCK_TIMEOUT_S):
        self.paths = paths
        self.lock_timeout = lock_timeout
        self._lock = None  # one FileLock per folder object: re-entrant, so a locked change may call add_round

    def exists(self) -> bool:
        return self.paths.dir.is_dir()

    def refuse_links(self) -> None:
        """SddError naming the first file of the folder (or of its rounds/) that is a symbolic link: every
        command on the run refuses it, whatever files that command reads."""
        for folder in (self.paths.dir, self.paths.dir / ROUNDS_DIR):
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if entry.is_symlink() and not is_kept_original(entry.name):
                    raise SddError(f"{entry.path} is a symbolic link; refused (sdd-tui never follows links in a run "
                                   f"folder: replace it with a copy of the file, or run `sdd-tui doctor --repair` "
                                   f"to set it aside)")

    def read_meta(self) -> dict[str, Any] | None:
        self.refuse_links()
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

    def write(self, meta: dict[str, Any], rounds: list[dict[str, Any]], durable: bool = True) -> list[Path]:
        """Both files at once (a new run, a migration, a repair); the folder is created if missing. A file that
        holds something the new content lacks, or that does not parse, is kept beside it first; returns the
        copies kept."""
        self.paths.dir.mkdir(parents=True, exist_ok=True)
        kept = []
        with self.locked():
            for path, new in ((self.paths.rounds, rounds), (self.paths.record, meta)):
                try:
                    old = read_json_file(path)
                except SddError:  # unreadable (corrupt, a FIFO, over the cap): set aside whole, whatever it is
                    kept.append(keep_original(path, move=not _regular_and_small(path)))
                else:
                    if old is not None and holds_more(old, new):
                        kept.append(keep_original(path))
                write_json(path, new, durable)
        return kept

    def update_meta(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """run.json with `fields` set; None (nothing written) when the folder or its record is gone."""
        return self.change_meta(lambda meta: fields)

    def change_meta(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any] | None:
        """run.json with the fields `change(run.json as it is now)` returns, read and written under the run's
        lock; None (nothing written) when the folder or its record is gone."""
        if not self.paths.record.exists():
            return None
        with self.locked():
            meta = self.read_meta()
            if meta is None:
                return None
            meta.update(change(dict(meta)))
            write_json(self.paths.record, meta)
        return meta

    def add_round(self, result: dict[str, Any]) -> None:
        """Store a round's result (the hot path: once per round, in the training thread)."""
        if not self.paths.record.exists():
            raise KeyError(self.paths.run_id)
        with self.locked():
            write_json(self.paths.rounds, merge_round(self.read_rounds(), result))

    def set_round_fields(self, index: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Round `index` of rounds.json with `fields` added (a branch's result), read and written under the
        run's lock: two branch commands on one run each keep theirs. Returns the round as stored."""
        with self.locked():
            current = {r["round"]: r for r in self.read_rounds()}.get(index)
            if current is None:
                raise SddError(f"round {index} is no longer in {self.paths.rounds}; `sdd-tui doctor` says why")
            result = {**current, **fields}
            self.add_round(result)
        return result

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The run's cross-process lock (re-entrant within this object)."""
        if self._lock is None:
            from filelock import FileLock

            self._lock = FileLock(str(self.paths.lock), timeout=self.lock_timeout)
        with hold(self._lock, self.paths.dir):
            yield
