"""The run history: a small summary per run in TinyDB (store.json) and a folder per run.

Layout under the home directory:
    store.json        TinyDB: `runs` (a summary per run, see core/history/run_index.py), `sweeps`, `meta`
    store.lock        file lock shared by every process that writes store.json
    runs/<id>/        the run's record (run.json), rounds (rounds.json), events and checkpoints (core/paths.py)
    sweeps/<id>.json  each sweep's record

A round's end writes only its run's folder; store.json is written when a run starts, ends or changes
status, and when tags, notes or settings change. Reads take no lock (every write replaces a file
atomically), so `sdd-tui runs` never waits for a writer and works in a read-only home. The folder is
the truth: a listed run that is recorded as running is summarised from its folder, and
`sdd-tui doctor --repair` rebuilds either side from the other.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections import ChainMap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinydb import TinyDB
from tinydb.storages import Storage

from ..atomic import atomic_save, atomic_write_text, hold, write_json  # noqa: F401 (re-exported)
from ..errors import SddError
from ..events import Event, RoundEnded, RunEnded, RunStarted
from ..paths import RunPaths, is_valid_id, sweep_file
from .migrate import META_TABLE, convert, format_problem, keep_backup, meta_of, needs_conversion, with_meta
from .records import RunRecord, SweepRecord
from .run_folder import RunFolder
from .run_index import RECORD_FIELDS, config_settings, doc_problem, next_key, rebase, split_record, summary_doc

if TYPE_CHECKING:
    from filelock import FileLock

HOME_ENV = "SDD_TUI_HOME"
RUN_STATUSES = ("running", "finished", "failed", "stopped")
LOCK_TIMEOUT_S = 60.0
CORRUPT_GLOB = "store.json.corrupt-*"
MIN_DELETE_ID = 4  # `runs delete ''` once matched every id by prefix


def default_home() -> Path:
    """`$SDD_TUI_HOME`, or the platform's user data dir for sdd-tui."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("sdd-tui", appauthor=False))


def keep_corrupt_copy(path: Path) -> str | None:
    """A copy of a store that does not parse, next to it; one copy per content, never one per command."""
    content = path.read_bytes()
    for copy in sorted(path.parent.glob(CORRUPT_GLOB)):
        if copy.stat().st_size == len(content) and copy.read_bytes() == content:
            return copy.name
    target = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    while target.exists():
        target = target.with_name(target.name + "x")
    try:
        shutil.copy2(path, target)
    except OSError:  # a read-only home: the store itself is untouched all the same
        return None
    return target.name


def store_problem(text: bytes) -> tuple[dict[str, Any] | None, str]:
    """(the parsed tables, "") or (None, why store.json's content is not a store)."""
    if not text.strip():
        return None, "it is empty"
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        return None, f"{getattr(error, 'msg', error)}{where}"
    if not isinstance(data, dict):
        return None, f"it holds {json.dumps(data)[:20]} instead of tables"
    if any(not isinstance(table, dict) for table in data.values()):
        return None, "a table is not an object"
    return data, ""


def read_store_file(path: Path) -> dict[str, Any] | None:
    """store.json's tables; None when there is none yet; SddError (a copy kept) when it is corrupt."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SddError(f"store {path} is unreadable ({error.strerror}); check its permissions") from None
    data, why = store_problem(text)
    if data is None:
        copy = keep_corrupt_copy(path)
        kept = f"copied to {copy}" if copy else "not copied (read-only home)"
        raise SddError(f"store {path} is corrupt ({why}); it was left untouched and {kept}; "
                       f"run `sdd-tui doctor` for how to recover")
    return data


class IndexStorage(Storage):
    """TinyDB storage over data read once per open (under the store lock when writing); atomic writes."""

    def __init__(self, path: str, data: dict[str, Any]):
        self.path = Path(path)
        self.data = data

    def read(self) -> dict[str, Any]:
        return self.data

    def write(self, data: dict[str, Any]) -> None:
        write_json(self.path, data)
        self.data = data

    def close(self) -> None:
        pass


def _replace_with(new: dict[str, Any]):
    def transform(doc: dict[str, Any]) -> None:
        doc.clear()
        doc.update(new)

    return transform


def _by_id(run_id: str):
    return lambda doc: isinstance(doc, dict) and doc.get("id") == run_id


def _started(doc: dict[str, Any]) -> float:
    started = doc.get("started")
    return started if isinstance(started, (int, float)) else 0.0


def _with_settings(doc: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """A copy of a summary whose `settings` reads as the run's whole flattened config (a view over the
    baseline: copying 50 fields for each of 10,000 runs would cost more than reading store.json)."""
    listed = dict(doc)
    unset = listed.pop("unset", None)
    below = {k: v for k, v in baseline.items() if k not in unset} if unset else baseline
    listed["settings"] = ChainMap(listed.get("settings") or {}, below)
    return listed


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """A summary's run fields, without the index's own keys."""
    return {key: value for key, value in doc.items() if key in RECORD_FIELDS}


class Store:
    """Run summaries in TinyDB plus run folders. Safe to share between processes."""

    def __init__(self, home: Path | str | None = None, lock_timeout: float | None = None):
        if isinstance(home, str) and not home.strip():
            raise SddError("--home is empty; give a directory, or leave --home out for $SDD_TUI_HOME or the default")
        self.home = Path(home).expanduser() if home else default_home()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SddError(f"cannot create the home directory {self.home} ({error.strerror}); pass --home DIR") from None
        if not self.home.is_dir():
            raise SddError(f"home {self.home} is not a directory; pass --home DIR")
        self.path = self.home / "store.json"
        self.lock_timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
        self._lock: FileLock | None = None  # made on the first write: reading needs no lock (nor filelock)
        self._legacy: dict[str, dict[str, Any]] = {}  # a first-format store read in a read-only home
        self._cache: tuple[Any, dict[str, Any]] = (None, {})  # (store.json's stat, its tables), see _load_cached
        self._checked_for: tuple[Any, Any] | None = None  # (the tables checked, their good and bad records)
        self._listed_for: tuple[Any, Any] | None = None  # (the tables listed, their non-running summaries)

    # -- store.json

    def _load(self, locked: bool) -> dict[str, Any]:
        data = read_store_file(self.path)
        if data is None:  # no store.json yet: a new home
            return {}
        problem = format_problem(data)
        if problem is not None:  # neither converted nor rewritten: a wrong guess once emptied every run folder
            raise SddError(f"store {self.path} cannot be read: {problem}; nothing was changed; run `sdd-tui doctor` "
                           f"(`sdd-tui doctor --repair` rebuilds it from the run folders, keeping it beside)")
        if needs_conversion(data):
            data = self._convert(data, locked)
        return data

    def _load_cached(self) -> dict[str, Any]:
        """store.json's tables for reading, parsed again only when the file changed (the app's screens
        list the runs every few seconds; at 10,000 runs a parse costs a tenth of a second). Every write
        replaces the file, so a new inode, size or mtime means new content. Callers must not mutate it."""
        try:
            stat = self.path.stat()
            key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = None
        if key is None or key != self._cache[0]:
            data = self._load(locked=False)
            self._cache = (key if not self._legacy else None, data)
        return self._cache[1]

    def _convert(self, data: dict[str, Any], locked: bool) -> dict[str, Any]:
        """A first-format store, converted in place on first open (a backup kept), or in memory when the
        home cannot be written (nothing is lost either way: store.json is replaced only at the end)."""
        try:
            with hold(self.lock(), self.home):
                fresh = read_store_file(self.path)
                if fresh is None or not needs_conversion(fresh):
                    return self._load(locked=True)
                keep_backup(self.path)
                converted, _records = convert(fresh, self.home)
                write_json(self.path, converted)
                return converted
        except (SddError, OSError):
            if locked:
                raise
        converted, self._legacy = convert(data, None)
        return converted

    @contextmanager
    def _db(self) -> Iterator[TinyDB]:
        """TinyDB over store.json under the cross-process lock (one read, then a write per change)."""
        with hold(self.lock(), self.home):
            data = self._load(locked=True)
            if not meta_of(data):
                with_meta(data, {})
            yield TinyDB(str(self.path), data, storage=IndexStorage)

    def lock(self) -> FileLock:
        """The store's cross-process lock (re-entrant: store methods may be called while holding it)."""
        if self._lock is None:
            from filelock import FileLock

            self._lock = FileLock(str(self.home / "store.lock"), timeout=self.lock_timeout)
        return self._lock

    def paths(self, run_id: str) -> RunPaths:
        return RunPaths(self.home, run_id)

    def run_dir(self, run_id: str) -> Path:
        return self.paths(run_id).dir

    def folder(self, run_id: str) -> RunFolder:
        return RunFolder(self.paths(run_id), self.lock_timeout)

    @staticmethod
    def _baseline(db: TinyDB) -> dict[str, Any]:
        return dict(meta_of(db.storage.read()).get("baseline") or {})

    def _put(self, db: TinyDB, meta: dict[str, Any], rounds: list[dict[str, Any]]) -> None:
        """Insert or replace the run's summary, built from its folder's content."""
        runs, baseline = db.table("runs"), self._baseline(db)
        if not baseline and meta.get("config"):  # the first real config becomes the baseline
            new_baseline = config_settings(meta.get("config"))
            runs.update(lambda doc: rebase([doc], baseline, new_baseline))
            db.table(META_TABLE).update({"baseline": new_baseline}, doc_ids=[1])
            baseline = new_baseline
        doc = summary_doc(meta, rounds, baseline)
        found = runs.get(_by_id(doc["id"]))
        if found is None:
            runs.insert(doc)
        elif found != doc:
            runs.update(_replace_with(doc), doc_ids=[found.doc_id])

    # -- reading

    def index(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(every well-formed summary with its full `settings`, the settings baseline): one read of
        store.json, no lock. A summary recorded as running is rebuilt from its folder (its rounds and
        status are there) at every call; the others are made once per parse of store.json, and callers
        must not mutate them."""
        data = self._load_cached()
        baseline = dict(meta_of(data).get("baseline") or {})
        if self._listed_for is None or self._listed_for[0] is not data:  # the app lists every few seconds
            docs = self._docs(data)
            ended = [_with_settings(doc, baseline) for doc in docs if doc.get("status") != "running"]
            self._listed_for = (data, (ended, [doc for doc in docs if doc.get("status") == "running"]))
        ended, running = self._listed_for[1]
        docs = ended + [_with_settings(self._live(doc, baseline), baseline) for doc in running]
        docs.sort(key=_started, reverse=True)
        return docs, baseline

    def _docs(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The well-formed summaries of store.json's tables, as stored."""
        return self._checked(data)[0]

    def bad_records(self) -> list[tuple[int, Any, str]]:
        """(doc id, record, problem) of each record of the wrong shape in store.json."""
        return self._checked(self._load_cached())[1]

    def _checked(self, data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[int, Any, str]]]:
        """(the well-formed summaries, the records of the wrong shape) of `data`: each record is checked once
        per parse of store.json, not once by the listing and again by its warning."""
        if self._checked_for is not None and self._checked_for[0] is data:
            return self._checked_for[1]
        good, bad = [], []
        for key, doc in (data.get("runs") or {}).items():
            problem = doc_problem(doc)
            if problem is None:
                good.append(doc)
            else:
                bad.append((int(key) if key.isdigit() else -1, doc, problem))
        self._checked_for = (data, (good, bad))
        return good, bad

    def _live(self, doc: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
        if doc["id"] in self._legacy:
            return doc
        try:
            folder = self.folder(doc["id"])
            meta = folder.read_meta()
            return summary_doc(meta, folder.read_rounds(), baseline) if meta is not None else doc
        except SddError:  # a corrupt or refused folder: doctor reports it; the listing shows the summary
            return doc

    def summaries(self) -> list[dict[str, Any]]:
        """Every run's summary, newest first: no config or rounds (`core.history.run_index.summary` reads the stored
        summary), so listing 10,000 runs reads store.json alone."""
        return self.index()[0]

    def list_runs(self) -> list[dict[str, Any]]:
        """Every run's whole record, newest first (reads every run folder: prefer `summaries`)."""
        return [self.full_record(doc) for doc in self.summaries()]

    def full_record(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A summary completed from its run folder: config, rounds, provenance, analyses..."""
        run_id = doc["id"]
        if run_id in self._legacy:
            return {**self._legacy[run_id], **public(doc)}
        folder = self.folder(run_id)
        meta = folder.read_meta()
        if meta is None:  # the folder is gone: only the summary is left
            return {**public(doc), "summary": doc.get("summary") or {}}
        return {**public(doc), **meta, "rounds": folder.read_rounds()}

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The whole record of the run whose id is `run_id` or starts with it; SddError if none or several.
        A whole id is read from its folder alone (the truth), without parsing store.json."""
        if is_valid_id(run_id) and run_id not in self._legacy:
            folder = self.folder(run_id)
            meta = folder.read_meta()
            if meta is not None and meta.get("id") == run_id:
                return {**meta, "rounds": folder.read_rounds()}
        return self.full_record(self.find(run_id))

    def run(self, run_id: str) -> RunRecord:
        """The typed record (core.history.records) of the run `get_run` finds: parsed once, read as attributes."""
        return RunRecord.parse(self.get_run(run_id))

    def find(self, run_id: str) -> dict[str, Any]:
        """The stored summary of the run whose id is `run_id` or starts with it; SddError if none or several."""
        return _by_id_or_prefix(self._docs(self._load_cached()), run_id, "run")

    def runs(self, run_ids) -> dict[str, RunRecord]:
        """Typed records of those of `run_ids` that exist, by id (one read of store.json), each parsed once."""
        wanted = set(run_ids)
        return {doc["id"]: RunRecord.parse(self.full_record(doc)) for doc in self.summaries() if doc["id"] in wanted}

    def has_run(self, run_id: str) -> bool:
        return any(doc["id"] == run_id for doc in self.summaries())

    def events_path(self, run_id: str) -> Path:
        return self.paths(run_id).events

    # -- writing

    def create_run(self, record: dict[str, Any]) -> None:
        """A new run (or one recorded afresh): its folder's files, then its summary."""
        meta, rounds = split_record(record)
        with self._db() as db:  # the lock first: a store locked by someone else gets no folder either
            self.folder(meta["id"]).write(meta, rounds)
            self._put(db, meta, rounds)

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set fields of a run's record, in its folder and its summary (under the store lock: a store
        locked by someone else changes neither)."""
        folder = self.folder(run_id)
        with self._db() as db:
            self._summarise(db, run_id, folder.update_meta(fields), fields)

    def end_run(self, run_id: str, **fields: Any) -> None:
        """A run's end (status, ended, error): written to its folder before the store lock is asked for,
        so a store locked by another process past the timeout loses nothing (the SddError still says so;
        listings read a running run from its folder, and `doctor --repair` updates its summary)."""
        folder = self.folder(run_id)
        folder.update_meta(fields)
        with self._db() as db:  # the summary from the folder as it is now (written once, read again)
            self._summarise(db, run_id, folder.read_meta(), fields)

    def _summarise(self, db: Any, run_id: str, meta: dict[str, Any] | None, fields: dict[str, Any]) -> None:
        """Put a run's summary from its folder's record (`meta`); for a run whose folder is gone, set
        `fields` on its summary alone."""
        if meta is not None:
            self._put(db, meta, self.folder(run_id).read_rounds())
            return
        runs = db.table("runs")
        found = runs.get(_by_id(run_id))
        if found is not None:
            runs.update({k: v for k, v in fields.items() if k in RECORD_FIELDS}, doc_ids=[found.doc_id])

    def add_round(self, run_id: str, result: dict[str, Any]) -> None:
        """Store a round's result, replacing an earlier copy of the same round (after a resume).
        The hot path (a round ends, in the training thread): only the run's folder is written."""
        self.folder(run_id).add_round(result)

    def claim_run(self, run_id: str) -> dict[str, Any]:
        """Mark a run `running` in this process before resuming it; refuse one that a live process holds.

        Check and update happen under one lock, so two `resume`s of the same run cannot both start.
        """
        import socket

        record = self.get_run(run_id)
        folder = self.folder(record["id"])
        with self._db():
            current = folder.read_meta() or record
            if current.get("status") == "running" and pid_alive(current.get("pid"), current.get("host")):
                where = f"pid {current.get('pid')} on {current.get('host')}"
                raise SddError(f"run {record['id']} is still running ({where}); stop it first with "
                               f"`kill {current.get('pid')}` (it checkpoints and stops), then resume it")
            self.update_run(record["id"], status="running", pid=os.getpid(), host=socket.gethostname())
        return dict(current)

    def delete_run(self, run_id: str) -> str:
        if len(run_id) < MIN_DELETE_ID:
            raise SddError(f"run id {run_id!r} is too short to delete by; give at least {MIN_DELETE_ID} "
                           f"characters (`sdd-tui runs` lists the ids)")
        record = self.find(run_id)
        if record.get("status") == "running" and pid_alive(record.get("pid"), record.get("host")):
            raise SddError(f"run {record['id']} is running; stop it first (Ctrl-C, or `kill {record.get('pid')}`)")
        folder = self.run_dir(record["id"])  # refuses a folder that is a symbolic link, before anything goes
        with self._db() as db:
            db.table("runs").remove(_by_id(record["id"]))
        shutil.rmtree(folder, ignore_errors=True)
        return record["id"]

    def change_run(self, run_id: str, change) -> dict[str, Any]:
        """Set the fields `change(run.json as it is now)` returns, read and written under the store's lock and
        the run's (a read-modify-write: two commands on one run both keep what they set). Returns the summary
        as it now is."""
        record = self.find(run_id)
        folder = self.folder(record["id"])
        with self._db() as db:
            fields = {}

            def remember(meta: dict[str, Any]) -> dict[str, Any]:
                fields.update(change(meta))
                return fields

            meta = folder.change_meta(remember)
            if meta is None:  # the folder is gone: the summary alone
                fields = change(dict(record))
            self._summarise(db, record["id"], meta, fields)
        return {**record, **{k: v for k, v in fields.items() if k in RECORD_FIELDS}}

    def set_tags(self, run_id: str, add: list[str] = (), remove: list[str] = ()) -> dict[str, Any]:
        """Add and remove tags of a run; returns its summary as it now is."""

        def tagged(meta: dict[str, Any]) -> dict[str, Any]:
            tags = [tag for tag in meta.get("tags") or [] if tag not in remove]
            return {"tags": tags + [tag for tag in dict.fromkeys(add) if tag not in tags]}

        return self.change_run(run_id, tagged)

    def set_note(self, run_id: str, note: str) -> dict[str, Any]:
        return self.change_run(run_id, lambda meta: {"note": note})

    def import_runs(self, records: list[dict[str, Any]]) -> None:
        """Add many whole records at once (the bulk path of a conversion): the run folders synced once,
        store.json written once, its tables edited in place (TinyDB's format: documents by text id)."""
        with self._db() as db:
            data = db.storage.read()
            converted, _ = convert({"runs": {str(i): r for i, r in enumerate(records, 1)}}, self.home)
            new_docs = list(converted["runs"].values())
            baseline, fresh = self._baseline(db), meta_of(converted).get("baseline") or {}
            runs = data.setdefault("runs", {})
            if baseline or not fresh:
                rebase(new_docs, fresh, baseline)
            else:  # the first real config: the runs already there are expressed against it too
                rebase(list(runs.values()), {}, fresh)
                meta_of(data)["baseline"] = fresh
            ids = {doc.get("id") for doc in new_docs if isinstance(doc, dict)}
            for key in [k for k, doc in runs.items() if isinstance(doc, dict) and doc.get("id") in ids]:
                del runs[key]
            first = next_key(runs)
            runs.update({str(first + offset): doc for offset, doc in enumerate(new_docs)})
            db.storage.write(data)

    # -- sweeps (a grid of settings x seeds; each member is an ordinary run with a "sweep" field)

    def create_sweep(self, record: dict[str, Any]) -> None:
        path = sweep_file(self.home, record["id"])
        with self._db() as db:
            write_json(path, record)
            sweeps = db.table("sweeps")
            sweeps.remove(_by_id(record["id"]))
            sweeps.insert(record)

    def update_sweep(self, sweep_id: str, **fields: Any) -> None:
        path = sweep_file(self.home, sweep_id)
        with self._db() as db:
            sweeps = db.table("sweeps")
            sweeps.update(fields, _by_id(sweep_id))
            found = sweeps.get(_by_id(sweep_id))
            if found is not None:
                write_json(path, dict(found))

    def list_sweeps(self) -> list[dict[str, Any]]:
        table = self._load(locked=False).get("sweeps") or {}
        sweeps = [dict(s) for s in table.values() if isinstance(s, dict) and isinstance(s.get("id"), str)]
        return sorted(sweeps, key=lambda s: s.get("created") or 0, reverse=True)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        """The sweep whose id is `sweep_id` or starts with it; SddError if none or several."""
        return _by_id_or_prefix(self.list_sweeps(), sweep_id, "sweep")

    def sweep(self, sweep_id: str) -> SweepRecord:
        """The typed record (core.history.records) of the sweep `get_sweep` finds: parsed once, read as attributes."""
        return SweepRecord.parse(self.get_sweep(sweep_id))


def _by_id_or_prefix(records: list[dict[str, Any]], wanted: str, kind: str) -> dict[str, Any]:
    """The record whose id is `wanted` or starts with it; SddError if none or several."""
    if not wanted:
        raise SddError(f"give a {kind} id (`sdd-tui {kind}s` lists them)")
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
    except (PermissionError, OverflowError, ValueError, TypeError):
        return True
    return True


def display_status(record: dict[str, Any] | RunRecord) -> str:
    """A run recorded as running whose process is gone shows as `interrupted`."""
    if isinstance(record, RunRecord):
        status, pid, host = record.status, record.pid, record.host
    else:  # a summary (store.json) or a record not yet parsed
        status, pid, host = record.get("status", "?"), record.get("pid"), record.get("host")
    if status == "running" and not pid_alive(pid, host):
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
        try:
            self._record(event)
        except OSError as error:  # a full disk: one line naming the fix, and the run stops with it
            reason = "the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else error.strerror or str(error)
            where = self.store.paths(event.run_id).dir
            raise SddError(f"cannot record run {event.run_id} in {where} ({reason}); its finished rounds and last "
                           f"checkpoint are kept; free space there, then `sdd-tui resume {event.run_id}`") from None

    def _record(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._start(event)
        try:
            if self._events_file is not None:
                self._events_file.write(event.to_json() + "\n")
                self._events_file.flush()
        finally:  # a round or a run's end is kept in the run's folder even when events.jsonl cannot grow
            if isinstance(event, RoundEnded):
                self.store.add_round(event.run_id, event.result)
            elif isinstance(event, RunEnded):
                self.close()
                self.store.end_run(event.run_id, status=event.status, ended=event.time, error=event.error)

    def _start(self, event: RunStarted) -> None:
        import socket

        if event.resumed_from_round >= 0:
            self.store.update_run(event.run_id, status="running", pid=os.getpid(), host=socket.gethostname(),
                                  device=event.device, error="", ended=None)
        else:
            self.store.create_run({
                "id": event.run_id, "name": event.name, "preset": event.preset, "config": event.config,
                "status": "running", "host": event.host or socket.gethostname(), "pid": os.getpid(),
                "device": event.device, "versions": event.versions, "provenance": run_provenance(event),
                "started": event.time, "ended": None, "error": "", "tags": [], "note": "", "rounds": [],
            })
        self.close()
        path = self.store.events_path(event.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._events_file = open_events_for_append(path)
        if self._events_file.tell() and not _ends_with_newline(path):  # a kill cut the last line short
            self._events_file.write("\n")

    def close(self) -> None:
        if self._events_file is not None:
            self._events_file.close()
            self._events_file = None


def run_provenance(event: RunStarted) -> dict[str, Any]:
    """Where a run came from (core/provenance.py), with the plugins it used (core.plugins.plugin_provenance)."""
    return dict(getattr(event, "provenance", None) or {})


def open_events_for_append(path: Path):
    """events.jsonl opened to append, made with the umask's mode; O_NOFOLLOW: a link put there after the
    folder's check is refused too, never appended to."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o666), "a", encoding="utf-8")
