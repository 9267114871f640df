"""What differs between two runs: config fields, the preset and the provenance, one line each."""

from __future__ import annotations

from typing import Any

from .grouping import flatten

MISSING = "-"


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A run's config (`noise.rate`), preset and provenance (`provenance.torch`) by dotted name."""
    fields = flatten(record.get("config") or {})
    fields["preset"] = record.get("preset")
    fields.update(flatten(record.get("provenance") or {}, "provenance."))
    return fields


def diff_runs(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, a's value, b's value) of every field whose values differ; MISSING where a run has none."""
    left, right = comparable(a), comparable(b)
    names = list(left) + [name for name in right if name not in left]
    return [(name, left.get(name, MISSING), right.get(name, MISSING)) for name in names
            if left.get(name, MISSING) != right.get(name, MISSING)]
