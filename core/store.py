"""The run history: TinyDB summaries (atomic writes, cross-process lock) and a folder per run.

Layout under the home directory:
    store.json            TinyDB: one record per run (config, status, rounds, ...)
    store.lock            file lock shared by every process using the store
    runs/<id>/events.jsonl  every event of the run, one JSON object a line
    runs/<id>/checkpoint.pt the latest checkpoint
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock
from platformdirs import user_data_dir
from tinydb import Query, TinyDB
from tinydb.storages import Storage

from core.errors import SddError
from core.events import Event, RoundEnded, RunEnded, RunStarted
from core.paths import RunPaths

HOME_ENV = "SDD_TUI_HOME"
RUN_STATUSES = ("running", "finished", "failed", "stopped")


def default_home() -> Path:
    """`$SDD_TUI_HOME`, or the platform's user data dir for sdd-tui."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path(user_data_dir("sdd-tui", appauthor=False))


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable: without it a power cut can bring the old name back."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save through a temporary file, fsync and rename: the old file survives any failure."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer = _WriteErrors(handle)
            try:
                torch.save(obj, writer)
            except RuntimeError:  # torch's zip writer reports a full disk as 'unexpected pos': say what it was
                if writer.error is not None:
                    raise writer.error from None
                raise
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _WriteErrors:
    """A file's write() that remembers the OSError (ENOSPC, EDQUOT, EIO) torch.save would turn into a
    RuntimeError about positions."""

    def __init__(self, handle):
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.handle.flush()


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file and never overwrites one it cannot read."""

    def __init__(self, path: str):
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            copy = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            if not copy.exists():
                shutil.copy2(self.path, copy)
            raise SddError(
                f"store {self.path} is corrupt ({error.msg} at line {error.lineno}); it was left untouched "
                f"and copied to {copy.name}; run `sdd-tui doctor` for how to recover"
            ) from None

    def write(self, data: dict[str, Any]) -> None:
        atomic_write_text(self.path, json.dumps(data, separators=(",", ":")))

    def close(self) -> None:
        pass


class Store:
    """Run records in TinyDB plus run folders. Safe to share between processes."""

    def __init__(self, home: Path | str | None = None):
        self.home = Path(home).expanduser() if home else default_home()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SddError(f"cannot create the home directory {self.home} ({error.strerror}); pass --home DIR") from None
        self.path = self.home / "store.json"
        self._lock = FileLock(str(self.home / "store.lock"), timeout=60)

    @contextmanager
    def _db(self) -> Iterator[TinyDB]:
        with self._lock:
            db = TinyDB(str(self.path), storage=AtomicJSONStorage)
            try:
                yield db
            finally:
                db.close()

    def lock(self) -> FileLock:
        """The store's cross-process lock (re-entrant: store methods may be called while holding it)."""
        return self._lock

    def paths(self, run_id: str) -> RunPaths:
        return RunPaths(self.home, run_id)

    def run_dir(self, run_id: str) -> Path:
        return self.paths(run_id).dir

    # -- records

    def create_run(self, record: dict[str, Any]) -> None:
        with self._db() as db:
            runs = db.table("runs")
            runs.remove(Query().id == record["id"])
            runs.insert(record)
        self.run_dir(record["id"]).mkdir(parents=True, exist_ok=True)

    def update_run(self, run_id: str, **fields: Any) -> None:
        with self._db() as db:
            db.table("runs").update(fields, Query().id == run_id)

    def add_round(self, run_id: str, result: dict[str, Any]) -> None:
        """Store a round's result, replacing an earlier copy of the same round (after a resume)."""
        with self._db() as db:
            runs = db.table("runs")
            record = runs.get(Query().id == run_id)
            if record is None:
                raise KeyError(run_id)
            rounds = [r for r in record.get("rounds", []) if r["round"] != result["round"]]
            rounds.append(result)
            rounds.sort(key=lambda r: r["round"])
            runs.update({"rounds": rounds}, Query().id == run_id)

    def list_runs(self) -> list[dict[str, Any]]:
        with self._db() as db:
            runs = [dict(r) for r in db.table("runs").all()]
        return sorted(runs, key=lambda r: r.get("started", 0), reverse=True)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run whose id is `run_id` or starts with it; SddError if none or several."""
        return _by_id_or_prefix(self.list_runs(), run_id, "run")

    def claim_run(self, run_id: str) -> dict[str, Any]:
        """Mark a run `running` in this process before resuming it; refuse one that a live process holds.

        Check and update happen under one lock, so two `resume`s of the same run cannot both start.
        """
        import socket

        record = self.get_run(run_id)
        with self._db() as db:
            runs = db.table("runs")
            current = runs.get(Query().id == record["id"]) or record
            if current.get("status") == "running" and pid_alive(current.get("pid"), current.get("host")):
                where = f"pid {current.get('pid')} on {current.get('host')}"
                raise SddError(f"run {record['id']} is still running ({where}); stop it first with "
                               f"`kill {current.get('pid')}` (it checkpoints and stops), then resume it")
            runs.update({"status": "running", "pid": os.getpid(), "host": socket.gethostname()},
                        Query().id == record["id"])
        return dict(current)

    def delete_run(self, run_id: str) -> str:
        record = self.get_run(run_id)
        if record.get("status") == "running" and pid_alive(record.get("pid"), record.get("host")):
            raise SddError(f"run {record['id']} is running; stop it first (Ctrl-C, or `kill {record.get('pid')}`)")
        with self._db() as db:
            db.table("runs").remove(Query().id == record["id"])
        shutil.rmtree(self.run_dir(record["id"]), ignore_errors=True)
        return record["id"]

    def events_path(self, run_id: str) -> Path:
        return self.paths(run_id).events

    # -- sweeps (a grid of settings x seeds; each member is an ordinary run with a "sweep" field)

    def create_sweep(self, record: dict[str, Any]) -> None:
        with self._db() as db:
            sweeps = db.table("sweeps")
            sweeps.remove(Query().id == record["id"])
            sweeps.insert(record)

    def update_sweep(self, sweep_id: str, **fields: Any) -> None:
        with self._db() as db:
            db.table("sweeps").update(fields, Query().id == sweep_id)

    def list_sweeps(self) -> list[dict[str, Any]]:
        with self._db() as db:
            sweeps = [dict(s) for s in db.table("sweeps").all()]
        return sorted(sweeps, key=lambda s: s.get("created", 0), reverse=True)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        """The sweep whose id is `sweep_id` or starts with it; SddError if none or several."""
        return _by_id_or_prefix(self.list_sweeps(), sweep_id, "sweep")


def _by_id_or_prefix(records: list[dict[str, Any]], wanted: str, kind: str) -> dict[str, Any]:
    """The record whose id is `wanted` or starts with it; SddError if none or several."""
    exact = [r for r in records if r["id"] == wanted]
    matches = exact or [r for r in records if r["id"].startswith(wanted)]
    if not matches:
        raise SddError(f"no {kind} {wanted!r}; `sdd-tui {kind}s` lists the {kind}s")
    if len(matches) > 1:
        ids = ", ".join(r["id"] for r in matches[:5])
        raise SddError(f"{kind} id {wanted!r} is ambiguous ({ids}); give more characters")
    return matches[0]


def pid_alive(pid: int | None, host: str | None = None) -> bool:
    """Whether a process with this pid runs on this host (True when it cannot be told)."""
    import socket

    if not pid:
        return False
    if host and host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def display_status(record: dict[str, Any]) -> str:
    """A run recorded as running whose process is gone shows as `interrupted`."""
    status = record.get("status", "?")
    if status == "running" and not pid_alive(record.get("pid"), record.get("host")):
        return "interrupted"
    return status


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


class StoreRecorder:
    """A sink that keeps the store and the run's events.jsonl in step with the engine's events."""

    def __init__(self, store: Store):
        self.store = store
        self._events_file = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._start(event)
        if self._events_file is not None:
            self._events_file.write(event.to_json() + "\n")
            self._events_file.flush()
        if isinstance(event, RoundEnded):
            self.store.add_round(event.run_id, event.result)
        elif isinstance(event, RunEnded):
            self.store.update_run(event.run_id, status=event.status, ended=event.time, error=event.error)
            self.close()

    def _start(self, event: RunStarted) -> None:
        import socket

        if event.resumed_from_round >= 0:
            self.store.update_run(event.run_id, status="running", pid=os.getpid(), host=socket.gethostname(),
                                  device=event.device, error="", ended=None)
        else:
            self.store.create_run({
                "id": event.run_id, "name": event.name, "preset": event.preset, "config": event.config,
                "status": "running", "host": event.host or socket.gethostname(), "pid": os.getpid(),
                "device": event.device, "versions": event.versions, "started": event.time,
                "ended": None, "error": "", "rounds": [],
            })
        self.close()
        path = self.store.events_path(event.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._events_file = open(path, "a", encoding="utf-8")
        if self._events_file.tell() and not _ends_with_newline(path):  # a kill cut the last line short
            self._events_file.write("\n")

    def close(self) -> None:
        if self._events_file is not None:
            self._events_file.close()
            self._events_file = None
