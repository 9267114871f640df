"""What differs between two runs: config fields, the preset and the provenance, one line each."""

from __future__ import annotations

from typing import Any

from .grouping import flatten
from .records import RunRecord

MISSING = "-"


def comparable(record: RunRecord) -> dict[str, Any]:
    """A run's config (`noise.rate`), preset and provenance (`provenance.torch`) by dotted name."""
    fields = flatten(record.config)
    fields["preset"] = record.preset
    fields.update(flatten(record.provenance or {}, "provenance."))
    return fields


def diff_runs(a: RunRecord, b: RunRecord) -> list[tuple[str, Any, Any]]:
    """(field, a's value, b's value) of every field whose values differ; MISSING where a run has none."""
    left, right = comparable(a), comparable(b)
    names = list(left) + [name for name in right if name not in left]
    return [(name, left.get(name, MISSING), right.get(name, MISSING)) for name in names
            if left.get(name, MISSING) != right.get(name, MISSING)]
