"""The store's half of a run record: a small summary per run, what `sdd-tui runs`, the history
screen and `--where` read without opening 10,000 run folders.

A summary holds the run's own fields (id, name, status, tags, note...), `summary` (dense and best
accuracy, where the best is, rounds done; see core.history.run_index.summary) and `settings`: the run's config
flattened to dotted names (`noise.rate`), stored as the difference from the store's `baseline` (the
first run's flattened config, kept in the store's meta table), so a summary stays a few hundred bytes
while every config field can still be queried. `unset` lists baseline fields the run's config lacks.
"""

from __future__ import annotations

from typing import Any

from ..paths import check_id, is_valid_id
from .grouping import flatten
from .records import RunRecord, as_run_record

RECORD_FIELDS = ("id", "name", "preset", "status", "host", "pid", "device", "started", "ended", "error", "sweep",
                 "tags", "note")
FOLDER_ONLY = ("config", "rounds", "versions", "provenance", "analyses")  # kept in the run folder alone
SKIPPED_SETTINGS = ("description",)  # long text, never a setting anyone filters on
_MISSING = object()
_TEXT, _NUMBER = (str, type(None)), (int, float, type(None))
FIELD_TYPES = {"name": _TEXT, "preset": _TEXT, "status": (str,), "host": _TEXT, "pid": (int, type(None)),
               "device": _TEXT, "started": _NUMBER, "ended": _NUMBER, "error": _TEXT, "sweep": _TEXT, "note": _TEXT}
SUMMARY_TYPES = {"rounds_done": (int, type(None)), "rounds_total": (int, type(None)), "dense_acc": _NUMBER,
                 "best_acc": _NUMBER, "best_sparsity": _NUMBER, "dataset": _TEXT, "model": _TEXT, "noise": _TEXT,
                 "noise_kind": _TEXT, "noise_rate": _NUMBER, "seed": (int, type(None)), "retrain_mode": _TEXT}


def config_settings(config: dict[str, Any] | None) -> dict[str, Any]:
    flat = flatten(config or {})
    return {key: value for key, value in flat.items() if key not in SKIPPED_SETTINGS}


def next_key(table: dict[str, Any]) -> int:
    """The first free document id of a TinyDB table as stored ({"1": ..., "2": ...}): one past the largest."""
    return max([int(key) for key in table if key.isdigit()] + [0]) + 1


def split_record(record: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A whole run record as (run.json's content, rounds.json's content)."""
    check_id(record.get("id"))
    meta = {key: value for key, value in record.items() if key != "rounds"}
    meta.setdefault("tags", [])
    meta.setdefault("note", "")
    return meta, list(record.get("rounds") or [])


def summary_doc(meta: dict[str, Any], rounds: list[dict[str, Any]], baseline: dict[str, Any]) -> dict[str, Any]:
    """The store's summary of a run from its folder's two files."""
    doc = {key: meta[key] for key in RECORD_FIELDS if key in meta}
    doc.setdefault("tags", [])
    doc.setdefault("note", "")
    doc["summary"] = summary_of(meta.get("config") or {}, rounds)
    flat = config_settings(meta.get("config"))
    doc["settings"] = {key: value for key, value in flat.items() if baseline.get(key, _MISSING) != value}
    unset = [key for key in baseline if key not in flat]
    if unset:
        doc["unset"] = unset
    return doc


def settings(doc: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Every config field of a summarised run, by dotted name."""
    unset = set(doc.get("unset") or ())
    full = {key: value for key, value in baseline.items() if key not in unset}
    full.update(doc.get("settings") or {})
    return full


def rebase(docs: list[dict[str, Any]], old: dict[str, Any], new: dict[str, Any]) -> None:
    """Express every summary's settings against a new baseline (in place)."""
    for doc in docs:
        if doc_problem(doc) is None:
            flat = settings(doc, old)
            doc["settings"] = {key: value for key, value in flat.items() if new.get(key, _MISSING) != value}
            doc.pop("unset", None)
            unset = [key for key in new if key not in flat]
            if unset:
                doc["unset"] = unset


def doc_problem(doc: Any) -> str | None:
    """Why a store record cannot be listed (wrong shape), or None."""
    if not isinstance(doc, dict):
        return f"is a {type(doc).__name__}, not a record"
    if "id" not in doc:
        return "has no id"
    run_id = doc["id"]
    if not isinstance(run_id, str):
        return f"has a {type(run_id).__name__} id ({run_id!r})"
    if not is_valid_id(run_id):
        return f"has an id that cannot name a run folder ({run_id!r})"
    if "rounds" in doc and not isinstance(doc["rounds"], list):
        return f"has `rounds` of type {type(doc['rounds']).__name__} (a list is expected)"
    if not isinstance(doc.get("summary"), dict):
        return "has no summary (a record of the old format that was not converted)"
    wrong = _wrong_type(doc, FIELD_TYPES) or _wrong_type(doc["summary"], SUMMARY_TYPES, "summary.")
    if wrong:
        return wrong
    if not isinstance(doc.get("settings", {}), dict) or not isinstance(doc.get("unset", []), list):
        return "has settings of the wrong type"
    tags = doc.get("tags")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return f"has tags that are not a list of words ({tags!r})"
    return None


def _wrong_type(doc: dict[str, Any], types: dict[str, tuple], prefix: str = "") -> str | None:
    """'has a status of type int (7)' for the first field of the wrong type (listings would crash on it)."""
    for key, allowed in types.items():
        value = doc.get(key)
        if key in doc and (not isinstance(value, allowed) or isinstance(value, bool)):
            return f"has a {prefix}{key} of type {type(value).__name__} ({repr(value)[:40]})"
    return None


def old_record_problem(record: Any) -> str | None:
    """Why a record of the old format (config and rounds inline) cannot be converted as it is, or None."""
    if not isinstance(record, dict):
        return f"is a {type(record).__name__}, not a record"
    if "id" not in record:
        return "has no id"
    if not isinstance(record["id"], str):
        return f"has a {type(record['id']).__name__} id ({record['id']!r})"
    if not is_valid_id(record["id"]):
        return f"has an id that cannot name a run folder ({record['id']!r})"
    rounds = record.get("rounds", [])
    if not isinstance(rounds, list) or not all(isinstance(r, dict) and isinstance(r.get("round"), int)
                                               for r in rounds):
        return f"has `rounds` of type {type(rounds).__name__} that are not a list of rounds"
    if not isinstance(record.get("config", {}), dict):
        return f"has a config of type {type(record['config']).__name__}"
    return None


def summary(record: RunRecord | dict[str, Any]) -> dict[str, Any]:
    """What tells a run apart in one line: its accuracies, rounds, seed, noise and retrain mode (`summary_of`).

    `record` is a run record (a record dict is parsed: scripts and tests), or a row of
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
