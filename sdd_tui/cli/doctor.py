"""`sdd-tui doctor [--repair]`: check (or repair) a store home, one line per finding."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sdd_tui.cli.options import HOME, open_store, user_errors


@user_errors
def doctor(
    ctx: typer.Context,
    repair: bool = typer.Option(False, "--repair", help="Move a corrupt store aside and rebuild it from the run "
                                                         "folders, re-add orphan folders, delete leftover temp files"),
    home: Optional[Path] = HOME,
) -> None:
    """Check the store: does it parse, corrupt copies, interrupted runs, orphan folders; one line each."""
    from sdd_tui.core.history import doctor as checks

    store = open_store(ctx, home)
    if repair:
        for line in checks.repair(store) or ["nothing to repair"]:
            typer.echo(f"repaired: {line}")
    findings = checks.diagnose(store)
    for finding in findings:
        typer.echo(("problem: " if finding.problem else "") + finding.text)
    problems = sum(finding.problem for finding in findings)
    if problems:
        typer.echo(f"{problems} problem(s); each line above says how to fix it")
        raise typer.Exit(1)
    typer.echo("no problems found")
