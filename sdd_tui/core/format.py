"""How numbers read on every face (CLI, headless lines, the app, figures): one place, one style."""

from __future__ import annotations

from typing import Any


def printable(text: object) -> str:
    """User text (names, notes, tags, errors) as it may reach a terminal: control characters shown
    escaped (ESC as \\x1b), never sent raw; everything else, emoji included, as it is."""
    text = str(text)
    if text.isprintable():  # nearly always: no character to look at one by one
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


def pct(value: float | None, digits: int = 1, missing: str = "-") -> str:
    """A fraction as a percentage: 0.653 -> '65.3%'; None -> `missing`."""
    return missing if value is None else f"{100 * value:.{digits}f}%"


def sparsity_pct(value: float | None) -> str:
    """Sparsity with two decimals: near the end of a curve 99.27% and 99.41% are different rounds."""
    return pct(value, 2)


def first_line(note: str | None) -> str:
    """A note's first line (`runs`, the history screen); '' for no note."""
    lines = (note or "").strip().splitlines()
    return lines[0] if lines else ""


ROUND_COLUMNS = ("round", "sparsity", "test acc", "best acc", "train acc", "memorised", "distance")


def round_cells(result: dict[str, Any]) -> tuple[str, ...]:
    """One finished round as the cells of ROUND_COLUMNS (`runs show`, the headless summary, the dashboard)."""
    distance = result.get("learning_distance")
    return (str(result["round"]), sparsity_pct(result["sparsity"]), pct(result.get("test_acc")),
            pct(result.get("best_test_acc")), pct(result.get("train_acc")), pct(result.get("noisy_memorized")),
            "-" if distance is None else f"{distance:.2f}")


def result_text(summary: dict[str, Any]) -> str:
    """'dense 65.3%, best 80.6% at sparsity 99.3%' from a `core.history.run_index.summary` dict."""
    return (f"dense {pct(summary.get('dense_acc'))}, best {pct(summary.get('best_acc'))} "
            f"at sparsity {pct(summary.get('best_sparsity'))}")


def duration(seconds: float | None) -> str:
    """'45 s', '12 min', '3 h 05 min', '2.5 days'; None -> '-'."""
    if seconds is None:
        return "-"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{max(seconds, 0):.0f} s" if seconds < 60 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours / 24:.1f} days"


def format_seconds(seconds: float | None) -> str:
    """A clock reading for ETAs and elapsed time: '4:05', '1:02:03'; None -> '--:--'."""
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def size(count: int) -> str:
    """Bytes for people: 512 B, 1.5 KB, 31.5 TB (powers of 1000, as disks are sold)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


NOISE_KINDS = {"asymmetric": "asym", "pairflip": "pair", "random": "rand"}


def noise_short(kind: str | None, rate: float | None) -> str:
    """'40%' (symmetric, the usual kind), 'asym 20%', 'pair 20%', 'rand 20%', 'none' (table cells)."""
    if kind in (None, "none") or rate is None:
        return kind or "-"
    return f"{100 * rate:.0f}%" if kind == "symmetric" else f"{NOISE_KINDS.get(kind, kind)} {100 * rate:.0f}%"


def rounds_text(summary: dict[str, Any]) -> str:
    """'12/30': the last finished pruning round of R (round 0 is the dense one), from `core.history.run_index.summary`."""
    return f"{summary['rounds_done']}/{summary['rounds_total']}"


def short_ids(ids: list[str], after_date: int = 4) -> dict[str, str]:
    """The shortest prefix of each id that no other id in `ids` shares, and at least `after_date`
    characters past the date part ("20261130-0049" of "20261130-004931-6677"): what to type for an id."""
    ordered = sorted(set(ids))
    pairs = [0, *(_common_prefix(a, b) for a, b in zip(ordered, ordered[1:])), 0]  # with each neighbour
    prefixes = {}
    for index, run_id in enumerate(ordered):
        shared = max(pairs[index], pairs[index + 1])
        date_end = run_id.find("-")
        floor = date_end + 1 + after_date if date_end >= 0 else after_date
        prefixes[run_id] = run_id[: min(len(run_id), max(shared + 1, floor))]
    return prefixes


def _common_prefix(a: str, b: str) -> int:
    """How many leading characters `a` and `b` share (a binary search of slice comparisons: 10,000 ids
    share most of their date, and a character loop costs a tenth of a second)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
