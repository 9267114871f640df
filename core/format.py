"""How numbers read on every face (CLI, headless lines, the app, figures): one place, one style."""

from __future__ import annotations

from typing import Any


def printable(text: object) -> str:
    """User text (names, notes, tags, errors) as it may reach a terminal: control characters shown
    escaped (ESC as \\x1b), never sent raw; everything else, emoji included, as it is."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
                   for char in str(text))


def pct(value: float | None, digits: int = 1, missing: str = "-") -> str:
    """A fraction as a percentage: 0.653 -> '65.3%'; None -> `missing`."""
    return missing if value is None else f"{100 * value:.{digits}f}%"


def sparsity_pct(value: float | None) -> str:
    """Sparsity with two decimals: near the end of a curve 99.27% and 99.41% are different rounds."""
    return pct(value, 2)


def result_text(summary: dict[str, Any]) -> str:
    """'dense 65.3%, best 80.6% at sparsity 99.3%' from a `core.results.summary` dict."""
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
