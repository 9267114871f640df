"""Lists of whole numbers typed on the command line: `1-16`, `1,2,5`, or a mix (`sweep --levels`, `branch --rounds`),
and the list of rounds a run trains (light: `core.progress` reads it without building the config models)."""

from __future__ import annotations

from core.errors import SddError


def parse_ranges(text: str, option: str, example: str = "1-16 or 1,2,5", low: int = 1) -> list[int]:
    """`1-3,5` -> [1, 2, 3, 5]: increasing, each once, all >= `low`; else SddError naming `option`."""
    numbers: list[int] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        first, dash, last = part.partition("-")
        try:
            bounds = (int(first), int(last)) if dash else (int(part), int(part))
        except ValueError:
            raise SddError(f"{option} {text!r}: expected {example}") from None
        if bounds[0] < low or bounds[1] < bounds[0]:
            raise SddError(f"{option} {text!r}: give numbers >= {low}, ranges low-high ({example})")
        numbers.extend(range(bounds[0], bounds[1] + 1))
    if not numbers:
        raise SddError(f"{option} {text!r}: expected {example}")
    return sorted(set(numbers))


def trained_rounds(rounds: int, levels: list[int] | None, reuses_dense: bool) -> list[int]:
    """Round 0 unless the dense round is reused from another run, then `levels` or every round 1..rounds."""
    return ([] if reuses_dense else [0]) + (list(levels) if levels is not None else list(range(1, rounds + 1)))
