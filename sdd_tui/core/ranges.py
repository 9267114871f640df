"""Lists of whole numbers typed on the command line: `1-16`, `1,2,5`, or a mix (`sweep --levels`, `branch --rounds`),
and the list of rounds a run trains (light: `core.runs.progress` reads it without building the config models)."""

from __future__ import annotations

from .errors import SddError

# Where no caller gives a bound: far past any round count (prune.rounds <= 200), far below a MemoryError.
LARGEST = 100_000


def parse_ranges(text: str, option: str, example: str = "1-16 or 1,2,5", low: int = 1,
                 high: int | None = None, what: str = "") -> list[int]:
    """`1-3,5` -> [1, 2, 3, 5]: increasing, each once, all >= `low` and <= `high` (when given: `what` says
    where that bound comes from); else SddError naming `option`. The bounds are checked before any list is
    built, so `1-1000000000000` is one line, not a MemoryError."""
    spans: list[tuple[int, int]] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        first, dash, last = part.partition("-")
        try:
            bounds = (int(first), int(last)) if dash else (int(part), int(part))
        except ValueError:
            raise SddError(f"{option} {text!r}: expected {example}") from None
        if bounds[0] < low or bounds[1] < bounds[0]:
            raise SddError(f"{option} {text!r}: give numbers >= {low}, ranges low-high ({example})")
        if bounds[1] > (high if high is not None else LARGEST):
            last = high if high is not None else LARGEST
            raise SddError(f"{option} {text!r}: {bounds[1]:,} is past {last:,}, the last {what or 'one allowed'}; "
                           f"give numbers {low}-{last}")
        spans.append(bounds)
    if not spans:
        raise SddError(f"{option} {text!r}: expected {example}")
    return sorted({number for first, last in spans for number in range(first, last + 1)})


def trained_rounds(rounds: int, levels: list[int] | None, reuses_dense: bool) -> list[int]:
    """Round 0 unless the dense round is reused from another run, then `levels` or every round 1..rounds."""
    return ([] if reuses_dense else [0]) + (list(levels) if levels is not None else list(range(1, rounds + 1)))
