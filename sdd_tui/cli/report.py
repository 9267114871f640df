"""`sdd-tui report ID ... | --sweep SW -o report.html`: the poster's four findings from your own runs, on one page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sdd_tui.cli.options import HOME, open_store, user_errors


@user_errors
def report(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(None, metavar="ID",
                                   help="Runs (ids or unique prefixes); seeds of one setting are grouped"),
    sweep: list[str] = typer.Option([], "--sweep", metavar="SW", help="Every member of this sweep, grouped by its grid (repeatable)"),
    output: Path = typer.Option(..., "--output", "-o", help="File to write: report.html (or report.md)"),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="html (one self-contained page) | md (figures in "
                                                                   "a folder beside it); default: from -o's suffix"),
    home: Optional[Path] = HOME,
) -> None:
    """Write one report: sparse double descent and its phases beside the paper's numbers, learning distance,
    minima flatness, winning tickets against reinits, settings, provenance and the commands to reproduce."""
    import time

    from sdd_tui.core.analysis.report import select_runs, write_report

    started = time.perf_counter()
    selection = select_runs(open_store(ctx, home), list(run_ids or []), list(sweep))
    written = write_report(selection, output, fmt)
    typer.echo(f"wrote {written} ({len(selection.records)} runs, {time.perf_counter() - started:.1f} s)")
