"""The dashboard's text panels: progress (where the run is, how long is left) and the event log."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog, Static

from sdd_tui.core.analysis.phases import detect_phases
from sdd_tui.core.format import pct as _pct, printable
from sdd_tui.runview import RunView
from sdd_tui.widgets.tables import elide

STATUS_STYLES = {"running": "bold green", "paused": "bold yellow", "finished": "bold cyan", "stopped": "bold yellow",
                 "failed": "bold red", "interrupted": "bold red", "starting": "bold",
                 "handing over": "bold yellow"}
LOG_STYLES = {"info": "", "warning": "yellow", "error": "bold red"}


ACTIVE = ("running", "paused", "handing over", "starting")


def progress_text(view: RunView, status: str, source: str, system: str = "", width: int = 0) -> Text:
    """Status and run; round, epoch and ETA; dense, best and latest accuracy; then, while it trains,
    the system line (`system`: device, GPU, CPU, memory; samples/s added here, or `paused`), or once
    it has ended, the phases (dense, dip, peak, collapse). Each is one line: the run's name is elided
    to what `width` columns leave it (0: whole), and a line still too long is cut with `…`, never
    wrapped, so the system line stays on screen."""
    p = view.progress
    active = status in ACTIVE
    text = Text()
    badge = f" {status.upper()} "
    rest = printable(f"  {view.run_id}  {source}") + (f"  on {p.device}" if p.device else "")
    name = printable(p.name or "?")
    if width:
        name = elide(name, max(8, width - len(badge) - 1 - len(rest)))
    text.append(badge, style=f"reverse {STATUS_STYLES.get(status, 'bold')}")
    text.append(f" {name}{rest}\n")
    text.append(f"round {p.round}/{p.rounds}  epoch {p.epoch}/{p.epochs}  {100 * p.fraction_done:3.0f}%", style="bold")
    if active:
        text.append(f"  {p.eta_text()}")
    text.append("\n")
    text.append(_results_line(view))
    if active and system:
        samples = f"  {p.samples_per_s:,.0f} samples/s" if p.samples_per_s else ""
        samples = "  paused" if status == "paused" else samples  # the last rate is not the current one
        text.append(f"\n{p.device or '?'}  {system}{samples}", style="dim")
    elif not active and view.results:
        text.append("\n" + phases_summary(detect_phases(view.results)))
    if view.error:
        text.append(printable(f"\nerror: {view.error}"), style="bold red")
    return text


def phases_summary(phases: dict) -> str:
    """`runs show`'s phases on one line: 'dip 50.1% at 96.48% r15  peak ...  collapse ...' (test accuracy,
    sparsity, round; the dense accuracy is on the line above)."""
    def at(name: str, point: dict | None) -> str:
        if point is None:
            return f"{name} not reached"
        return f"{name} {_pct(point['test_acc'])} at {_pct(point['sparsity'], 2)} r{point['round']}"

    if not phases.get("double_descent"):
        return f"no double descent: {phases.get('reason')}"
    return "  ".join([at("dip", phases["dip"]), at("peak", phases["peak"]), at("collapse", phases["collapse"])])


def _results_line(view: RunView) -> str:
    results = view.results
    if not results:
        return "no round finished yet"
    dense = next((r for r in results if r["round"] == 0), None)
    scored = [r for r in results if r.get("test_acc") is not None]
    best = max(scored, key=lambda r: r["test_acc"]) if scored else None
    last = results[-1]
    parts = [f"dense {_pct(dense.get('test_acc') if dense else None)}"]
    if best:
        parts.append(f"best {_pct(best['test_acc'])} at {_pct(best['sparsity'], 2)}")
    parts.append(f"last {_pct(last.get('test_acc'))} at {_pct(last['sparsity'], 2)}")
    return "  ".join(parts)


class ProgressPanel(Static):
    lines = 0

    def show(self, view: RunView, status: str, source: str, system: str = "") -> None:
        width = self.content_region.width
        text = progress_text(view, status, source, system, width)
        if width and status in ACTIVE:  # one line each, cut rather than wrapped: the system line stays on screen
            lines = text.split("\n")
            for line in lines:
                if not line.plain.startswith("error:"):  # an error wraps: it is read whole
                    line.truncate(width, overflow="ellipsis")
            text = Text("\n").join(lines)
        count = len(text.plain.splitlines()) + (10 if view.error else 0)
        self.update(text, layout=count != self.lines)  # a layout pass per update costs more than the rest
        self.lines = count


class EventLog(RichLog):
    """Appends the view's log lines it has not written yet; on a resize it writes them again (wrapped
    to the new width) and shows the latest."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=500, wrap=True, markup=False, highlight=False, **kwargs)
        self.written = 0
        self.view: RunView | None = None

    def on_resize(self) -> None:  # RichLog's own handler runs too (it writes what waited for a size)
        if self.view is not None:
            self.call_later(self.rewrite)

    def rewrite(self) -> None:
        self.clear()
        self.written = 0
        self.show(self.view)
        self.scroll_end(animate=False, immediate=True)

    def show(self, view: RunView) -> None:
        if view is not self.view:  # another view (e.g. switched to watching): start over
            self.clear()
            self.view, self.written = view, 0
        new = min(view.logged - self.written, len(view.log))
        for level, line in list(view.log)[len(view.log) - new:]:
            self.write(Text(printable(line), style=LOG_STYLES.get(level, "")))
        self.written = view.logged
