"""The run history: `sdd-tui runs` (list), `runs show`, `runs export`, `runs delete`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from core.errors import SddError
from sdd_tui.cli.options import HOME, open_store, resolve_home, user_errors

app = typer.Typer(help="The run history: list, show, export, delete.", rich_markup_mode=None)


@app.callback(invoke_without_command=True)
@user_errors
def runs_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list"),
    home: Optional[Path] = HOME,
) -> None:
    """All runs, newest first."""
    if ctx.invoked_subcommand:
        ctx.obj = {"home": resolve_home(ctx, home)}
        return
    from rich.console import Console
    from rich.table import Table

    from core.format import pct as _pct, printable
    from core.results import summary
    from core.store import display_status

    records = open_store(ctx, home).list_runs()
    if as_json:
        rows = [{"id": r["id"], "name": r.get("name"), "status": display_status(r), "preset": r.get("preset"),
                 "started": r.get("started"), "ended": r.get("ended"), **summary(r)} for r in records]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not records:
        typer.echo("no runs yet; start one with: sdd-tui --preset digits-noise40")
        return
    table = Table(box=None)
    for column in ("id", "name", "status", "rounds", "dense", "best", "at sparsity", "started"):
        table.add_column(column, no_wrap=column in ("id", "started"))
    for record in records:
        s = summary(record)
        started = time.strftime("%m-%d %H:%M", time.localtime(record.get("started") or 0))
        table.add_row(printable(record["id"]), printable(record.get("name", "")), display_status(record),
                      f"{s['rounds_done']}/{s['rounds_total']}", _pct(s["dense_acc"]), _pct(s["best_acc"]),
                      _pct(s["best_sparsity"]), started)
    Console(highlight=False, markup=False).print(table)


@app.command("show")
@user_errors
def runs_show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    as_json: bool = typer.Option(False, "--json", help="Print the documented JSON object"),
    home: Optional[Path] = HOME,
) -> None:
    """One run: its settings and a row per round."""
    from rich.console import Console

    from core.analysis import detect_phases, phases_lines
    from core.format import printable, result_text
    from core.results import branch_phases, run_json, summary
    from core.store import display_status
    from sdd_tui.headless import summary_table

    record = open_store(ctx, home).get_run(run_id)
    status = display_status(record)
    if as_json:
        typer.echo(json.dumps(run_json(record, status), indent=2))
        return
    s = summary(record)
    console = Console(highlight=False, markup=False)  # names and errors are text, never markup
    console.print(printable(f"{record['id']}  {record.get('name')}  {status}  on {record.get('device')}"))
    console.print(f"{s['model']} on {s['dataset']}, noise {s['noise']}, {s['rounds_done']}/{s['rounds_total']} rounds; "
                  + result_text(s))
    if record.get("error"):
        console.print(printable(f"error: {record['error']}"))
    if record.get("rounds"):
        console.print(summary_table(record["rounds"], "rounds"))
        for line in phases_lines(detect_phases(record["rounds"])):
            console.print(line, markup=False)
        for branch, phases in branch_phases(record["rounds"]).items():
            console.print(f"{branch} branch: " + "; ".join(phases_lines(phases)), markup=False)


@app.command("export")
@user_errors
def runs_export(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv | json"),
    output: Path = typer.Option(..., "--output", "-o", help="File to write"),
    home: Optional[Path] = HOME,
) -> None:
    """Write a run's rounds to a CSV (one row per round, config columns included) or JSON file."""
    from core.results import csv_text, run_json
    from core.store import display_status

    if fmt not in ("csv", "json"):
        raise SddError(f"--format {fmt!r}: use csv or json")
    record = open_store(ctx, home).get_run(run_id)
    text = csv_text(record) if fmt == "csv" else json.dumps(run_json(record, display_status(record)), indent=2)
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise SddError(f"cannot write {output} ({error.strerror}); choose another -o path") from None
    typer.echo(f"wrote {output}")


@app.command("delete")
@user_errors
def runs_delete(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
    home: Optional[Path] = HOME,
) -> None:
    """Delete a run's record and folder (not while it runs)."""
    store = open_store(ctx, home)
    record = store.get_run(run_id)
    if not yes and sys.stdin.isatty():
        typer.confirm(f"delete run {record['id']} ({record.get('name')})?", abort=True)
    typer.echo(f"deleted {store.delete_run(record['id'])}")
