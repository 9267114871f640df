"""`sdd-tui resume` and `sdd-tui doctor`: carry on after a kill, and check (or repair) a store home."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from core.config import validate_config
from core.errors import SddError
from core.events import Event, Sink
from core.store import Store, display_status
from sdd_tui.cli import HOME_HELP, app, open_store, run_headless, user_errors


def hangup_safe(sink: Sink) -> Sink:
    """A sink that falls silent once its stream fails (the terminal went with SIGHUP, a closed pipe)."""
    broken = False

    def safe(event: Event) -> None:
        nonlocal broken
        if broken:
            return
        try:
            sink(event)
        except OSError:
            broken = True

    return safe


@app.command("resume")
@user_errors
def resume(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """Continue a stopped, failed or interrupted run from its last checkpoint, with its stored settings."""
    store = open_store(ctx, home)
    record = store.get_run(run_id)
    run_id = record["id"]
    if display_status(record) == "finished":
        raise SddError(f"run {run_id} is finished; nothing to resume (`sdd-tui runs show {run_id}` shows it)")
    config = validate_config(record.get("config") or {}, f"run {run_id}'s stored config")
    before = store.claim_run(run_id)
    try:
        status = run_headless(config, store, record.get("preset"), run_id=run_id, resume=True)
    except BaseException:
        _release(store, run_id, before)
        raise
    if status != "finished":
        raise typer.Exit(130 if status == "stopped" else 1)


def _release(store: Store, run_id: str, before: dict) -> None:
    """A resume that failed before the run started leaves the record as it found it."""
    try:
        record = store.get_run(run_id)
    except SddError:
        return
    if record.get("status") == "running" and record.get("pid") == os.getpid():
        store.update_run(run_id, status=before.get("status"), pid=before.get("pid"), host=before.get("host"))


@app.command("doctor")
@user_errors
def doctor(
    ctx: typer.Context,
    repair: bool = typer.Option(False, "--repair", help="Move a corrupt store aside and rebuild it from the run "
                                                         "folders, re-add orphan folders, delete leftover temp files"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """Check the store: does it parse, corrupt copies, interrupted runs, orphan folders; one line each."""
    from core import doctor as checks

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
