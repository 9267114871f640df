"""Health checks of a store home, and the repairs that lose nothing.

`diagnose` reads only and says at most one thing per run. `repair` moves a corrupt store, or one whose
format cannot be told, aside (never deleting it) and rebuilds it from the run folders and the sweep
files; re-adds orphan run folders; brings out-of-date summaries in line with their folders; rebuilds a
folder's run.json and rounds.json from every source there is (run.json, rounds.json, events.jsonl,
the round files, the store's summary), so that no round, branch result, tag, note or analysis is lost;
sets aside links in a run folder; fixes or sets aside records of the wrong shape; and removes temporary
files left by writes that a kill interrupted. A file it replaces that held more, or did not parse, is
kept beside it (`<file>.before-repair-<time>`). store.json is written once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..atomic import hold, write_json
from ..errors import SddError
from ..events import RoundEnded, RunEnded, RunStarted, event_from_json
from ..paths import EVENTS, ROUNDS_DIR, RUNS_DIR, SWEEPS_DIR, RunPaths, is_valid_id, sweep_file
from .migrate import META_TABLE, convert, format_problem, meta_of, needs_conversion, with_meta
from .records import RunRecord, SweepRecord
from .run_folder import RunFolder, holds_more, is_kept_original, is_round, keep_original, merge_round, read_capped
from .run_index import FIELD_TYPES, config_settings, doc_problem, next_key, summary_doc
from .store import CORRUPT_GLOB, RUN_STATUSES, Store, display_status, keep_corrupt_copy, pid_alive, store_problem

REJECTED = "store.json.rejected-{stamp}.json"


@dataclass(frozen=True)
class Finding:
    problem: bool  # False: information only
    text: str


def record_from_events(path: Path) -> dict[str, Any] | None:
    """A run record rebuilt from its events.jsonl (a line cut short by a kill is skipped)."""
    record: dict[str, Any] | None = None
    for line in (read_capped(path) or b"").decode("utf-8", errors="replace").splitlines():
        try:
            event = event_from_json(line)
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(event, RunStarted):
            if record is None:
                record = {"id": event.run_id, "name": event.name, "preset": event.preset, "config": event.config,
                          "status": "running", "host": event.host, "pid": None, "device": event.device,
                          "versions": event.versions, "provenance": event.provenance, "started": event.time,
                          "ended": None, "error": "", "tags": [], "note": "", "rounds": []}
            else:
                record.update(status="running", device=event.device, ended=None, error="")
        elif record is None:
            continue
        elif isinstance(event, RoundEnded):
            record["rounds"] = merge_round(record["rounds"], event.result)
        elif isinstance(event, RunEnded):
            record.update(status=event.status, ended=event.time, error=event.error)
    return record


# ---------------------------------------------------------------------------- what is there


@dataclass
class Home:
    """Everything diagnose and repair look at, read once."""

    data: dict[str, Any] | None  # store.json's tables; None when it does not parse
    why: str  # why it does not parse
    docs: dict[str, dict[str, Any]]  # well-formed summaries by run id
    bad: list[tuple[str, Any, str]]  # (table key, record, problem)
    folders: dict[str, Path]  # run folders by name
    unknown: dict[str, Any] | None = None  # store.json's tables when it parses but its format cannot be told


def read_home(store: Store) -> Home:
    try:
        text = store.path.read_bytes()
    except FileNotFoundError:
        text = b'{"meta": {"1": {"format": 2}}}'  # no store.json: a new home, as every command reads it
    except OSError as error:
        return Home(None, f"unreadable: {error.strerror}", {}, [], _run_folders(store.home))
    data, why = store_problem(text)
    docs, bad = {}, []
    if data is not None and format_problem(data) is not None:
        return Home(None, format_problem(data), {}, [], _run_folders(store.home), unknown=data)
    if data is not None:
        if needs_conversion(data):
            data, _ = convert(data, None)  # read as the next command will convert it
        for key, doc in (data.get("runs") or {}).items():
            problem = doc_problem(doc)
            if problem is None:
                docs[doc["id"]] = doc
            else:
                bad.append((key, doc, problem))
    return Home(data, why, docs, bad, _run_folders(store.home))


def _run_folders(home: Path) -> dict[str, Path]:
    runs = home / RUNS_DIR
    if not runs.is_dir():
        return {}
    return {path.name: path for path in sorted(runs.iterdir()) if path.is_dir() or path.is_symlink()}


def _sweep_files(home: Path) -> dict[str, Path]:
    folder = home / SWEEPS_DIR
    return {path.stem: path for path in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def _stale_temp_files(home: Path, docs: dict[str, dict[str, Any]], folders: dict[str, Path]) -> list[Path]:
    """Temporary files of interrupted writes; those of live runs may be writes in progress."""
    live = {i for i, d in docs.items() if d.get("status") == "running" and pid_alive(d.get("pid"), d.get("host"))}
    found = list(home.glob(".store.json.*.tmp")) + list((home / SWEEPS_DIR).glob(".*.tmp"))
    for name, folder in folders.items():
        if name not in live and not folder.is_symlink():
            found += folder.glob(".*.tmp")
    return sorted(found)


def folder_state(store: Store, run_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None, str]:
    """(run.json, rounds.json, what is wrong with the folder or "")."""
    try:
        folder = store.folder(run_id)
        if not folder.exists():
            return None, None, "no folder"
        meta = folder.read_meta()
        rounds = folder.read_rounds()
    except SddError as error:
        return None, None, str(error)
    return meta, rounds, "" if meta is not None else "no run.json"


def _live(meta: dict[str, Any]) -> bool:
    return meta.get("status") == "running" and pid_alive(meta.get("pid"), meta.get("host"))


def _last_round(rounds: list[dict[str, Any]] | None) -> str:
    return f"after round {max(r['round'] for r in rounds)}" if rounds else "before its first round ended"


# ---------------------------------------------------------------------------- diagnose


def diagnose(store: Store) -> list[Finding]:
    """One finding a line: the store, corrupt copies, records of the wrong shape, each run, sweeps, leftovers."""
    home = read_home(store)
    findings = [_store_finding(store, home)]
    for copy in sorted(store.home.glob(CORRUPT_GLOB)):
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(copy.stat().st_mtime))
        findings.append(Finding(False, f"corrupt copy {copy.name} ({copy.stat().st_size} bytes, {stamp}): kept from a "
                                       f"store that failed to parse; delete it once `sdd-tui runs` looks right"))
    for key, _record, problem in home.bad:
        findings.append(Finding(True, f"record #{key} in {store.path.name} {problem}; it is not listed; "
                                      f"`sdd-tui doctor --repair` {_bad_record_fix(problem)}"))
    baseline = meta_of(home.data or {}).get("baseline") or {}
    for run_id in sorted(set(home.docs) | set(home.folders), key=lambda i: (home.docs.get(i, {}).get("started")
                                                                            or 0, i)):
        finding = _run_finding(store, run_id, home.docs.get(run_id), home.folders.get(run_id), baseline,
                               home.data is not None)
        if finding is not None:
            findings.append(finding)
    findings += _sweep_findings(store, home)
    for path in _stale_temp_files(store.home, home.docs, home.folders):
        findings.append(Finding(True, f"leftover temporary file {path} from an interrupted write; "
                                      f"`sdd-tui doctor --repair` deletes it"))
    if home.data is not None:
        findings += _listing_findings(store)
    return findings


def _store_finding(store: Store, home: Home) -> Finding:
    if home.data is None and home.unknown is not None:
        rebuildable = sum(1 for name in home.folders if _rebuildable(store.home, name))
        return Finding(True, f"store {store.path}'s format cannot be told for certain ({home.why}); no command "
                             f"converts or rewrites it; `sdd-tui doctor --repair` keeps it as "
                             f"store.json.before-repair-<time> and rebuilds it from {rebuildable} run folder(s) and "
                             f"{len(_sweep_files(store.home))} sweep file(s)")
    if home.data is None:
        rebuildable = sum(1 for name in home.folders if _rebuildable(store.home, name))
        return Finding(True, f"store {store.path} does not parse ({home.why}); it is left as it is; "
                             f"`sdd-tui doctor --repair` moves it aside and rebuilds it from {rebuildable} run "
                             f"folder(s) and {len(_sweep_files(store.home))} sweep file(s)")
    sweeps = len(home.data.get("sweeps") or {})
    return Finding(False, f"store {store.path}: ok, {len(home.docs)} run(s), {sweeps} sweep(s)")


def _rebuildable(home: Path, name: str) -> bool:
    folder = home / RUNS_DIR / name
    return not folder.is_symlink() and ((folder / "run.json").exists() or (folder / "events.jsonl").exists())


def _bad_record_fix(problem: str) -> str:
    if "int id" in problem:
        return "gives it the id as text"
    if "`rounds`" in problem:
        return "rebuilds its rounds from the run's events.jsonl (the record is kept in a rejected-*.json file)"
    return "moves it to a store.json.rejected-*.json file next to the store (kept, not deleted)"


def _run_finding(store: Store, run_id: str, doc: dict[str, Any] | None, folder: Path | None,
                 baseline: dict[str, Any], store_ok: bool) -> Finding | None:
    """At most one thing to say about a run (or a folder under runs/)."""
    if not is_valid_id(run_id):
        return Finding(False, f"folder {folder} under runs/ is not named like a run; it is ignored")
    if folder is not None and folder.is_symlink():
        return Finding(True, f"run folder {folder} is a symbolic link; sdd-tui refuses to follow it; replace it with "
                             f"the folder it points to")
    links = _linked_files(folder) if folder is not None else []
    if links:
        return Finding(True, f"run {run_id}: {links[0]} is a symbolic link, which every command refuses; "
                             f"`sdd-tui doctor --repair` sets it aside (the link, not what it points to) and "
                             f"rebuilds the run's files from the others")
    meta, rounds, wrong = folder_state(store, run_id)
    if doc is None:
        if not store_ok:
            return None  # the store line says it is rebuilt from the folders
        if meta is not None:
            return Finding(True, f"orphan folder {folder}: no summary in the store; `sdd-tui doctor --repair` re-adds "
                                 f"it from its run.json")
        if (folder / "events.jsonl").exists():
            why = f" and {wrong.split(';')[0]}" if wrong and wrong != "no run.json" else ""
            return Finding(True, f"orphan folder {folder}: no record in the store{why}; `sdd-tui doctor --repair` "
                                 f"re-adds it from its events.jsonl and its other files")
        return Finding(True, f"orphan folder {folder}: no record and no events.jsonl; delete it if you do not need "
                             f"its files")
    if wrong == "no folder":
        return Finding(False, f"run {run_id} has no folder {store.home / RUNS_DIR / run_id}; only its summary is "
                              f"left (`sdd-tui runs` shows it); it cannot be resumed or shown round by round")
    if wrong:
        fix = ("rebuilds it from its events.jsonl and other files" if (folder / "events.jsonl").exists()
               else "rebuilds it from its checkpoint and round files" if (folder / "checkpoint.pt").exists()
               or (folder / ROUNDS_DIR).is_dir() else "cannot rebuild it (no events.jsonl, checkpoint or round files)")
        return Finding(True, f"run {run_id}: {wrong.split(';')[0]}; `sdd-tui doctor --repair` {fix}")
    if (problem := record_problem(meta, rounds or [])) is not None:
        field, value = problem
        fix = (f"`sdd-tui doctor --repair` sets it to {_default(field)!r} and keeps the file as "
               f"run.json.before-repair-<time>" if field in RESETTABLE else f"edit it in {folder / 'run.json'}")
        return Finding(True, f"run {run_id}: its run.json has a {field} of type {type(value).__name__} "
                             f"({repr(value)[:40]}), which the commands that read the run refuse; {fix}")
    status = display_status(meta)
    lost = _rounds_only_in_events(store, run_id, rounds) if status != "running" else []
    if lost:
        return Finding(True, f"run {run_id}: rounds.json lacks round(s) {', '.join(map(str, lost))} that its "
                             f"events.jsonl holds; `sdd-tui doctor --repair` puts them back")
    if summary_doc(meta, rounds, baseline) != doc and meta.get("status") != "running":
        return Finding(True, f"run {run_id}: its summary in the store is out of date (store: {doc.get('status')}, "
                             f"folder: {meta.get('status')}); `sdd-tui doctor --repair` updates it")
    return _status_finding(store, run_id, meta, rounds, status)


# Fields of run.json that a repair puts back to their default when a hand edit left a wrong type: labels and
# bookkeeping, nothing measured (run.json is kept beside it first). Any other field is the user's to edit.
RESETTABLE = frozenset({"name", "tags", "note", "error", "host", "device", "pid", "preset", "sweep", "started",
                        "ended"})


def record_problem(meta: dict[str, Any], rounds: list[dict[str, Any]]) -> tuple[str, Any] | None:
    """(field, value) of the first field of run.json of the wrong type for a RunRecord; None when it reads."""
    try:
        RunRecord.model_validate({**meta, "rounds": rounds})
    except ValidationError as error:
        location = error.errors()[0]["loc"]
        field = str(location[0]) if location else "?"
        return field, meta.get(field)
    return None


def _default(field: str) -> Any:
    return RunRecord.model_fields[field].get_default(call_default_factory=True)


def _reset_wrong_fields(store: Store, run_id: str, meta: dict[str, Any], rounds: list[dict[str, Any]],
                        actions: list[str]) -> dict[str, Any]:
    """run.json with each RESETTABLE field of the wrong type set to its default (the file kept first)."""
    folder = RunFolder(RunPaths(store.home, run_id), store.lock_timeout)
    while (problem := record_problem(meta, rounds)) is not None and problem[0] in RESETTABLE:
        field, value = problem
        with folder.locked():
            kept = keep_original(folder.paths.record)
            changed = folder.change_meta(lambda _meta, field=field: {field: _default(field)})
        if changed is None:  # run.json went away meanwhile: nothing to set
            return meta
        meta = changed
        actions.append(f"set run {run_id}'s {field} ({repr(value)[:40]}) to {_default(field)!r} in its run.json; "
                       f"kept the file as {kept.name}")
    return meta


def _linked_files(folder: Path) -> list[Path]:
    """The files of a run folder (and of its rounds/) that are symbolic links."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    found = [path for path in sorted(folder.iterdir()) if path.is_symlink()]
    rounds = folder / ROUNDS_DIR
    if rounds.is_dir() and not rounds.is_symlink():
        found += [path for path in sorted(rounds.iterdir()) if path.is_symlink()]
    return [path for path in found if not is_kept_original(path.name)]


def _rounds_only_in_events(store: Store, run_id: str, rounds: list[dict[str, Any]]) -> list[int]:
    """Round numbers events.jsonl holds that rounds.json lacks (a repair restores them)."""
    try:
        events = store.paths(run_id).events
        record = record_from_events(events) if events.exists() else None
    except SddError:
        return []
    have = {r["round"] for r in rounds}
    return sorted(r["round"] for r in (record or {}).get("rounds", []) if r["round"] not in have)


def _status_finding(store: Store, run_id: str, meta: dict[str, Any], rounds: list[dict[str, Any]],
                    status: str) -> Finding | None:
    resumable = store.paths(run_id).checkpoint.exists()
    how = (f"`sdd-tui resume {run_id}` continues it" if resumable
           else f"it has no checkpoint; its rounds are kept, and a new run starts it again" if rounds
           else f"`sdd-tui resume {run_id}` starts it over (no checkpoint)")
    if status == "interrupted":
        return Finding(True, f"run {run_id} was interrupted (process {meta.get('pid')} on {meta.get('host')} is "
                             f"gone) {_last_round(rounds)}; {how}")
    if status in ("stopped", "failed"):
        return Finding(False, f"run {run_id} {status} {_last_round(rounds)}; {how}")
    return None


def _sweep_findings(store: Store, home: Home) -> list[Finding]:
    files = _sweep_files(store.home)
    table = {s.get("id"): s for s in ((home.data or {}).get("sweeps") or {}).values() if isinstance(s, dict)}
    findings = []
    for sweep_id in sorted(set(files) - set(table)):
        if home.data is not None:
            findings.append(Finding(True, f"sweep {sweep_id} is missing from the store; `sdd-tui doctor --repair` "
                                          f"re-adds it from {files[sweep_id]}"))
    for sweep_id in sorted(set(table) - set(files)):
        if is_valid_id(sweep_id):
            findings.append(Finding(True, f"sweep {sweep_id} has no copy in {SWEEPS_DIR}/ (what a repair rebuilds "
                                          f"it from); `sdd-tui doctor --repair` writes one"))
    for sweep in table.values():  # what `sdd-tui sweeps` stops at (core.history.records: strict types)
        try:
            SweepRecord.parse(sweep)
        except SddError as error:
            findings.append(Finding(True, f"{str(error).split(';')[0]}: `sdd-tui sweeps` stops at it; set that field "
                                          f"right in {SWEEPS_DIR}/{sweep.get('id')}.json and in {store.path.name}"))
    return findings


def _listing_findings(store: Store) -> list[Finding]:
    """What `sdd-tui runs` and `sdd-tui sweeps` would fail with: doctor never says all is well while they fail."""
    try:
        store.summaries()
        store.list_sweeps()
    except SddError as error:
        return [Finding(True, f"`sdd-tui runs` fails: {error}")]
    return []


# ---------------------------------------------------------------------------- repair


def repair(store: Store) -> list[str]:
    """Fix what can be fixed without losing anything; returns one line per action."""
    actions: list[str] = []
    with hold(store.lock(), store.home):
        home = read_home(store)
        data = home.data
        if home.unknown is not None:  # its format cannot be told: kept whole beside, rebuilt from the folders
            try:
                copy = keep_original(store.path)
            except OSError as error:
                raise SddError(f"cannot keep a copy of {store.path} ({error.strerror}); make the home writable "
                               f"first") from None
            actions.append(f"kept the store whose format cannot be told ({home.why}) as {copy.name}; rebuilt it "
                           f"from the run folders and sweep files")
            data = _carried_over(home.unknown, home.folders)
        elif data is None:
            copy = keep_corrupt_copy(store.path)
            if copy is None:
                raise SddError(f"cannot keep a copy of the corrupt store {store.path}; make the home writable first")
            store.path.unlink()
            actions.append(f"moved the corrupt store aside (its bytes are kept in {copy})")
            data = {}
        elif store.path.exists() and needs_conversion(data):
            data = store._load(locked=True)  # the first format: converted, with its backup
            actions.append("converted the store to the current format (a backup is kept next to it)")
        if not meta_of(data):
            with_meta(data, {})
        runs = data.setdefault("runs", {})
        hints = {}
        actions += _repair_bad_records(store, runs, home.bad, hints)
        actions += _repair_folders(store, data, runs, hints)
        actions += _repair_sweeps(store, data.setdefault("sweeps", {}))
        write_json(store.path, data)
        for path in _stale_temp_files(store.home, home.docs, home.folders):
            path.unlink(missing_ok=True)
            actions.append(f"deleted leftover temporary file {path}")
    return actions


def _carried_over(unknown: dict[str, Any], folders: dict[str, Path]) -> dict[str, Any]:
    """Of a store whose format cannot be told: its sweeps, and the well-formed summaries of runs with no folder
    (the folders rebuild the rest; the whole store is kept beside all the same)."""
    runs = unknown.get("runs") if isinstance(unknown.get("runs"), dict) else {}
    kept = [doc for doc in runs.values() if doc_problem(doc) is None and doc["id"] not in folders]
    sweeps = unknown.get("sweeps") if isinstance(unknown.get("sweeps"), dict) else {}
    return {"runs": {str(i): doc for i, doc in enumerate(kept, 1)},
            "sweeps": {k: v for k, v in sweeps.items() if isinstance(v, dict)}}


def _repair_bad_records(store: Store, runs: dict[str, Any], bad: list[tuple[str, Any, str]],
                        hints: dict[str, dict[str, Any]]) -> list[str]:
    """Records of the wrong shape, each kept in a rejected-*.json file. A run with a folder is rebuilt from the
    folder (the record lends only its tags, note and sweep, as `hints`); a record with no folder (an int id,
    `rounds` that are not a list) gets one, its rounds from events.jsonl when its own are not a list."""
    actions, rejected = [], []
    for key, record, problem in bad:
        del runs[key]
        rejected.append(record)
        fixed = _fixable(record)
        if fixed is not None and _has_folder(store, fixed["id"]):
            hints[fixed["id"]] = fixed
            actions.append(f"record #{key} ({problem}) set aside; run {fixed['id']} is rebuilt from its folder")
            continue
        rounds = fixed.get("rounds", []) if fixed is not None else []
        if fixed is not None and not (isinstance(rounds, list) and all(is_round(r) for r in rounds)):
            fixed["rounds"] = _rounds_from_events(store, fixed["id"])
        try:
            if fixed is None:
                raise SddError("no run id")
            meta = {"tags": [], "note": "", **{k: v for k, v in fixed.items() if k != "rounds"}}
            store.folder(fixed["id"]).write(meta, list(fixed.get("rounds") or []))
        except SddError:  # no usable id, or its folder is refused (a symbolic link)
            actions.append(f"record #{key} ({problem}) set aside")
            continue
        actions.append(f"record #{key} ({problem}) fixed: run {fixed['id']} with {len(fixed.get('rounds') or [])} "
                       f"round(s)")
    if rejected:
        path = store.home / REJECTED.format(stamp=int(time.time()))
        path.write_text(json.dumps(rejected, indent=1), encoding="utf-8")
        actions.append(f"kept {len(rejected)} record(s) of the wrong shape in {path.name}")
    return actions


def _has_folder(store: Store, run_id: str) -> bool:
    try:
        return store.folder(run_id).exists()
    except SddError:  # a folder that is a link: left for the folder's own finding
        return True


def _fixable(record: Any) -> dict[str, Any] | None:
    """A copy of the record with a text id that can name a run folder, or None."""
    if not isinstance(record, dict):
        return None
    fixed = {k: v for k, v in record.items() if k not in ("summary", "settings", "unset")}
    if isinstance(fixed.get("id"), int) and not isinstance(fixed.get("id"), bool):
        fixed["id"] = str(fixed["id"])
    if not is_valid_id(fixed.get("id")) or not isinstance(fixed.get("config", {}), dict):
        return None
    for key, allowed in FIELD_TYPES.items():  # a field of the wrong type is dropped (the record is kept whole)
        if key in fixed and (not isinstance(fixed[key], allowed) or isinstance(fixed[key], bool)):
            del fixed[key]
    if not (isinstance(fixed.get("tags", []), list) and all(isinstance(t, str) for t in fixed.get("tags", []))):
        del fixed["tags"]
    return fixed


def _rounds_from_events(store: Store, run_id: str) -> list[dict[str, Any]]:
    try:
        events = store.paths(run_id).events
        record = record_from_events(events) if events.exists() else None
    except SddError:
        return []
    return record["rounds"] if record else []


def _repair_folders(store: Store, data: dict[str, Any], runs: dict[str, Any],
                    hints: dict[str, dict[str, Any]]) -> list[str]:
    """Every run folder's files made whole from every source, and its summary put in the store if missing or
    stale."""
    actions = []
    baseline = meta_of(data).get("baseline") or {}
    by_id = {doc["id"]: key for key, doc in runs.items() if doc_problem(doc) is None}
    for run_id, folder in _run_folders(store.home).items():
        if not is_valid_id(run_id) or folder.is_symlink():
            continue
        doc = runs.get(by_id.get(run_id, "")) or hints.get(run_id)
        meta, rounds = _mend_folder(store, run_id, doc, actions)
        if meta is None:
            continue
        if not _live(meta):
            meta = _reset_wrong_fields(store, run_id, meta, rounds, actions)
        if not baseline and meta.get("config"):
            baseline = config_settings(meta.get("config"))
            data[META_TABLE]["1"]["baseline"] = baseline
        doc = summary_doc(meta, rounds, baseline)
        if run_id not in by_id:
            key = str(next_key(runs))
            runs[key] = doc
            by_id[run_id] = key
            actions.append(f"re-added run {run_id} ({meta.get('status')}, {len(rounds)} round(s)) from {folder}")
        elif runs[by_id[run_id]] != doc and not _live(meta):
            runs[by_id[run_id]] = doc
            actions.append(f"updated run {run_id}'s summary from its folder ({meta.get('status')}, "
                           f"{len(rounds)} round(s))")
    return actions


def _mend_folder(store: Store, run_id: str, doc: dict[str, Any] | None,
                 actions: list[str]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The folder's run.json and rounds.json as they should be, written under the run's lock when they lack
    anything another source holds; (None, []) when nothing can tell the run's record."""
    paths = RunPaths(store.home, run_id)
    folder = RunFolder(paths, store.lock_timeout)
    with folder.locked():
        for link in _linked_files(paths.dir):
            kept = keep_original(link, move=True)
            actions.append(f"set aside the symbolic link {link} of run {run_id} as {kept.name} (never followed)")
        meta, rounds, wrong = folder_state(store, run_id)
        if meta is not None and _live(meta):
            return meta, rounds or []  # a live run writes its own files
        whole_meta, whole_rounds, sources = gather_record(store, run_id, doc)
        if whole_meta is None:
            return (meta, rounds or []) if meta is not None else (None, [])
        if not wrong and not holds_more(whole_meta, meta) and not holds_more(whole_rounds, rounds or []):
            return meta, rounds or []
        kept = folder.write(whole_meta, whole_rounds)
        kept_text = f"; kept the original(s) as {', '.join(p.name for p in kept)}" if kept else ""
        why = wrong.split(";")[0] or "incomplete"
        actions.append(f"rebuilt run {run_id}'s record from {' + '.join(sources)} ({why}; "
                       f"{len(whole_rounds)} round(s)){kept_text}")
        return whole_meta, whole_rounds


def gather_record(store: Store, run_id: str, doc: dict[str, Any] | None
                  ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[str]]:
    """(run.json, rounds, the sources read) of a run from every source there is: the checkpoint (only when
    neither run.json nor events.jsonl is left), events.jsonl, the store's summary (name, status, tags, note,
    sweep), run.json, the round files (their results hold the branch results), rounds.json; each later source
    overrides the earlier on the fields it holds, and no round or branch result is dropped."""
    paths = RunPaths(store.home, run_id)
    folder = RunFolder(paths, store.lock_timeout)
    sources, meta, by_round = [], {}, {}
    events = _quiet(lambda: record_from_events(paths.events) if paths.events.exists() else None)
    run_json = _quiet(folder.read_meta)
    if events is None and run_json is None:
        checkpoint = _checkpoint_record(paths)
        if checkpoint is not None:
            sources.append("checkpoint.pt")
            meta.update(status="stopped", config=checkpoint["config"])
            for result in checkpoint["rounds"]:
                by_round[result["round"]] = dict(result)
    if events is not None and events.get("id") == run_id:
        sources.append(EVENTS)
        meta.update({k: v for k, v in events.items() if k != "rounds"})
        for result in events["rounds"]:
            by_round[result["round"]] = dict(result)
    hint = _fixable(doc) if doc else None
    if hint:
        meta.update({k: hint[k] for k in ("name", "tags", "note", "sweep") if hint.get(k)})
        if run_json is None and events is None and hint.get("status") in RUN_STATUSES:
            meta["status"] = hint["status"]
    if run_json is not None:
        sources.append("run.json")
        meta.update(run_json)
    for source, results in (("round files", _round_file_results(paths)), ("rounds.json", _quiet(folder.read_rounds))):
        if results:
            sources.append(source)
        for result in results or []:
            by_round[result["round"]] = {**by_round.get(result["round"], {}), **result}
    if not sources:  # nothing says what the run was
        return None, [], sources
    meta = {"status": "stopped", "config": {}, "tags": [], "note": "", **meta, "id": run_id}
    return meta, [by_round[r] for r in sorted(by_round)], sources


def _checkpoint_record(paths: RunPaths) -> dict[str, Any] | None:
    """The config and rounds a readable checkpoint.pt holds, or None."""
    path = paths.dir / "checkpoint.pt"
    if path.is_symlink() or not path.is_file():
        return None
    import torch

    from ..engine.checkpoint import load_plain

    try:
        payload = load_plain(path, torch.device("cpu"), "checkpoint", "")
    except SddError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict):
        return None
    rounds = payload.get("rounds") if isinstance(payload.get("rounds"), list) else []
    return {"config": _plain(payload["config"]), "rounds": [_plain(r) for r in rounds if is_round(r)]}


def _quiet(read):
    """`read()`, or None when the file it reads is corrupt or refused."""
    try:
        return read()
    except SddError:
        return None


def _round_file_results(paths: RunPaths) -> list[dict[str, Any]]:
    """The result kept in each readable round file (with any branch stored since); torch only when there are
    round files."""
    folder = paths.dir / ROUNDS_DIR
    if folder.is_symlink() or not folder.is_dir():
        return []
    files = [p for p in sorted(folder.glob("round-*.pt")) if not p.is_symlink() and p.is_file()]
    if not files:
        return []
    import torch

    from ..engine.checkpoint import read_round_file

    results = []
    for path in files:
        try:
            result = read_round_file(path, torch.device("cpu")).get("result")
        except SddError:
            continue
        if is_round(result):
            results.append(_plain(result))
    return results


def _plain(value: Any) -> Any:
    """A round file's result as JSON-able values (torch may hand back tensors of one number)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "numel") and value.numel() == 1:
        return value.item()
    return value


def _repair_sweeps(store: Store, sweeps: dict[str, Any]) -> list[str]:
    actions = []
    table = {s.get("id"): key for key, s in sweeps.items() if isinstance(s, dict)}
    for sweep_id, path in _sweep_files(store.home).items():
        if sweep_id in table:
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            actions.append(f"sweep file {path} is unreadable; left as it is")
            continue
        key = str(next_key(sweeps))
        sweeps[key] = record
        actions.append(f"re-added sweep {sweep_id} from {path}")
    for sweep_id, key in table.items():
        if is_valid_id(sweep_id) and not sweep_file(store.home, sweep_id).exists():
            write_json(sweep_file(store.home, sweep_id), sweeps[key])
            actions.append(f"wrote sweep {sweep_id}'s copy to {SWEEPS_DIR}/{sweep_id}.json")
    return actions
