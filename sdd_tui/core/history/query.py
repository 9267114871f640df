"""Which runs? `--where field=value` conditions, statuses, tags and a sweep, matched against the store's
summaries (never a run folder), so a question over 10,000 runs reads store.json alone.

A field is a config field by its dotted name (`noise.rate`, `retrain.mode`, `runtime.seed`), a run
field (`id`, `name`, `preset`, `status`, `device`, `host`, `sweep`, `note`) or a result
(`dense_acc`, `best_acc`, `best_sparsity`, `rounds_done`). Operators: = != < <= > >=; a value is
read as the field's type (numbers compare as numbers, `true`/`false`, `none`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

from ..errors import SddError

RUN_FIELDS = ("id", "name", "preset", "status", "device", "host", "sweep", "note")
RESULT_FIELDS = ("dense_acc", "best_acc", "best_sparsity", "rounds_done", "rounds_total")
STATUSES = ("running", "finished", "failed", "stopped", "interrupted")
OPERATOR = re.compile(r"(!=|<=|>=|=|<|>)")
TAG = re.compile(r"[^\s,]{1,64}")
_MISSING = object()


def check_tag(tag: str) -> str:
    """A tag is one word: no spaces or commas (CSV joins tags with commas), 1 to 64 printable characters."""
    if not TAG.fullmatch(tag) or not tag.isprintable():
        raise SddError(f"tag {tag!r} is not one word; a tag has no spaces or commas and at most 64 characters "
                       f"(e.g. paper, seed-sweep, v2)")
    return tag


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    text: str

    def matches(self, value: Any) -> bool:
        if value is _MISSING:
            return self.op == "!="
        if value is None:
            empty = self.text.lower() in ("none", "null", "")
            return {"=": empty, "!=": not empty}.get(self.op, False)
        target = self.value_like(value)
        if self.op in ("=", "!="):
            same = math.isclose(value, target, rel_tol=1e-9, abs_tol=1e-12) if _is_number(value) else value == target
            return same if self.op == "=" else not same
        try:
            return {"<": value < target, "<=": value <= target, ">": value > target, ">=": value >= target}[self.op]
        except TypeError:
            return False

    def value_like(self, value: Any) -> Any:
        """The condition's text read as the type of `value` (SddError when it cannot be)."""
        text = self.text
        if isinstance(value, bool):
            lowered = text.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise SddError(f"--where {self}: {self.field} is true or false")
        if _is_number(value):
            try:
                return float(text)
            except ValueError:
                raise SddError(f"--where {self}: {self.field} is a number") from None
        if isinstance(value, list):
            try:
                return json.loads(text)
            except ValueError:
                return [part.strip() for part in text.strip("[]").split(",") if part.strip()]
        return text

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.text}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_condition(term: str) -> Condition:
    """'noise.rate=0.4' -> Condition('noise.rate', '=', '0.4')."""
    found = OPERATOR.search(term)
    if not found or not term[: found.start()].strip():
        raise SddError(f"--where {term!r}: give field=value (or !=, <, <=, >, >=), e.g. --where noise.rate=0.4")
    return Condition(term[: found.start()].strip(), found.group(1), term[found.end():].strip())


def field_value(doc: dict[str, Any], name: str) -> Any:
    """A summary's value of a field (see the module's docstring); _MISSING when the run has none."""
    if name == "status":
        from .store import display_status

        return display_status(doc)
    if name in RUN_FIELDS:
        return doc.get(name, _MISSING)
    if name in RESULT_FIELDS:
        return (doc.get("summary") or {}).get(name, _MISSING)
    return (doc.get("settings") or {}).get(name, _MISSING)


def known_fields(docs: list[dict[str, Any]]) -> set[str]:
    names = set(RUN_FIELDS) | set(RESULT_FIELDS)
    for doc in docs:
        names.update(doc.get("settings") or {})
    return names


@dataclass
class RunQuery:
    """What `sdd-tui runs` (and export, and the history screen) selects; empty: every run."""

    conditions: list[Condition] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    sweep: str | None = None

    @classmethod
    def parse(cls, where=(), statuses=(), tags=(), sweep: str | None = None) -> RunQuery:
        for status in statuses:
            if status not in STATUSES:
                raise SddError(f"--status {status!r}: use one of {', '.join(STATUSES)}")
        return cls([parse_condition(term) for term in where], list(statuses), [check_tag(t) for t in tags], sweep)

    @classmethod
    def parse_in(cls, store: Any, where=(), statuses=(), tags=(), sweep: str | None = None) -> RunQuery:
        """As `parse`, with `sweep` an id or unique prefix of one of `store`'s sweeps (`runs`, `runs export`,
        `load_runs`)."""
        return cls.parse(where, statuses, tags, store.sweep(sweep).id if sweep else None)

    def check_fields(self, docs: list[dict[str, Any]]) -> None:
        """SddError naming the closest field when a condition names a field no run has."""
        if not self.conditions:
            return
        known = known_fields(docs)
        for condition in self.conditions:
            if condition.field not in known:
                close = get_close_matches(condition.field, sorted(known), n=3)
                hint = f"did you mean {', '.join(close)}?" if close else "fields are config names such as noise.rate"
                raise SddError(f"--where {condition}: unknown field {condition.field!r}; {hint}")

    def matches(self, doc: dict[str, Any]) -> bool:
        if self.sweep is not None and doc.get("sweep") != self.sweep:
            return False
        if self.tags and not set(self.tags) <= set(doc.get("tags") or ()):
            return False
        if self.statuses and field_value(doc, "status") not in self.statuses:
            return False
        return all(condition.matches(field_value(doc, condition.field)) for condition in self.conditions)

    def select(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The summaries that match, in their order (unknown fields are an error when there are runs)."""
        if docs:
            self.check_fields(docs)
        return [doc for doc in docs if self.matches(doc)]


def parse_filter_text(text: str, docs: list[dict[str, Any]]) -> tuple[RunQuery, list[str]]:
    """The history screen's filter: words with an operator are conditions (`noise.rate=0.4`, `best_acc>0.8`),
    `#tag` words tags; the other words are returned for the screen's own text match."""
    conditions, tags, words = [], [], []
    for word in text.split():
        if OPERATOR.search(word):
            conditions.append(parse_condition(word))
        elif word.startswith("#") and len(word) > 1:
            tags.append(word[1:])
        else:
            words.append(word)
    query = RunQuery(conditions, [], tags)
    if docs:
        query.check_fields(docs)
    return query, words
