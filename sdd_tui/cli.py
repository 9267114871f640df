"""`sdd-tui`: the Typer command line. Without a subcommand: a headless run (--preset/--config) or the app."""

from __future__ import annotations

import functools
import json
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from core.analysis import detect_phases, phases_lines
from core.config import config_to_toml, load_preset, preset_names, resolve_config
from core.errors import SddError
from core.format import pct as _pct, result_text
from core.results import branch_phases, csv_text, run_json, summary
from core.store import Store, StoreRecorder, display_status

app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)
presets_app = typer.Typer(help="List bundled presets, or show one.", rich_markup_mode=None)
runs_app = typer.Typer(help="The run history: list, show, export, delete.", rich_markup_mode=None)
app.add_typer(presets_app, name="presets")
app.add_typer(runs_app, name="runs")

HOME_HELP = "Where runs are stored (default: $SDD_TUI_HOME or the user data dir)"


def user_errors(command):
    """Print a user error as one `error: ...` line on stderr and exit 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SddError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _home(ctx: typer.Context, home: Path | None) -> Path | None:
    if home is not None:
        return home
    root = ctx.find_root()
    return (root.obj or {}).get("home") if root else None


def open_store(ctx: typer.Context, home: Path | None) -> Store:
    return Store(_home(ctx, home))


# ---------------------------------------------------------------------------- run


@app.callback(invoke_without_command=True)
@user_errors
def root(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Run this bundled preset headless"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run the experiment in this TOML file"),
    overrides: list[str] = typer.Option([], "--set", "-s", help="Override a field: section.field=value"),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="auto | cpu | cuda | cuda:N"),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the run (default: the preset's)"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
    tui: bool = typer.Option(False, "--tui", help="Start the run straight into its dashboard"),
) -> None:
    """Run a sparse double descent experiment headless, or open the app with no arguments."""
    ctx.obj = {"home": home}
    if ctx.invoked_subcommand:
        return
    if not (preset or config):
        _open_app(home)
        return
    extra = list(overrides)
    if device:
        extra.append(f"runtime.device={json.dumps(device)}")
    if name:
        extra.append(f"name={json.dumps(name)}")
    experiment_config = resolve_config(preset, config, extra)
    if tui:
        _open_app(home, start=(experiment_config, preset))
        return
    status = run_headless(experiment_config, Store(home), preset)
    if status != "finished":
        raise typer.Exit(130 if status == "stopped" else 1)


def _open_app(home: Path | None, start=None) -> None:
    try:
        from sdd_tui.app import SddApp
    except ImportError:
        raise SddError("the interactive app is not available in this build; run headless with --preset NAME") from None
    SddApp(store=Store(home), start=start).run()


def run_headless(config, store: Store, preset: str | None, run_id: str | None = None, resume: bool = False,
                 recorder: StoreRecorder | None = None) -> str:
    """Run in the foreground; SIGINT/SIGTERM/SIGHUP stop at the next batch and keep finished rounds.

    `recorder` replaces the plain StoreRecorder (sweep members record their sweep too).
    """
    from core.launch import build_run
    from sdd_tui.cli_reliability import hangup_safe
    from sdd_tui.headless import HeadlessReporter

    built = build_run(config, store.home, preset=preset, run_id=run_id, resume=resume,
                      recorder=recorder or StoreRecorder(store), sinks=[hangup_safe(HeadlessReporter())])
    experiment, control, recorder = built.experiment, built.control, built.recorder
    previous = {}

    def stop(signum, _frame):
        if control.stop.is_set() and signum == signal.SIGINT:  # a second Ctrl-C: give up waiting for the batch
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        if control.stop.is_set():  # SIGHUP then SIGTERM when a session closes: one stop is enough
            return
        control.stop.set()
        try:  # after SIGHUP the terminal may be gone
            again = "; Ctrl-C again to abort" if signum == signal.SIGINT else ""
            print(f"\nstopping after this batch ({signal.Signals(signum).name}){again}", file=sys.stderr)
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:  # nohup ignores SIGHUP: keep it so
            previous[signum] = signal.signal(signum, stop)
    try:
        return experiment.run()
    finally:
        recorder.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ---------------------------------------------------------------------------- presets


@presets_app.callback(invoke_without_command=True)
@user_errors
def presets_list(ctx: typer.Context) -> None:
    """Names of the bundled presets with their one-line descriptions."""
    if ctx.invoked_subcommand:
        return
    names = preset_names()
    width = max(len(n) for n in names)
    for name in names:
        typer.echo(f"{name:<{width}}  {load_preset(name).description}")


@presets_app.command("show")
@user_errors
def presets_show(name: str) -> None:
    """The full configuration of a preset, as TOML."""
    typer.echo(config_to_toml(load_preset(name)), nl=False)


# ---------------------------------------------------------------------------- runs


@runs_app.callback(invoke_without_command=True)
@user_errors
def runs_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """All runs, newest first."""
    if ctx.invoked_subcommand:
        ctx.obj = {"home": _home(ctx, home)}
        return
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
    import time

    for record in records:
        s = summary(record)
        started = time.strftime("%m-%d %H:%M", time.localtime(record.get("started") or 0))
        table.add_row(record["id"], record.get("name", ""), display_status(record),
                      f"{s['rounds_done']}/{s['rounds_total']}", _pct(s["dense_acc"]), _pct(s["best_acc"]),
                      _pct(s["best_sparsity"]), started)
    Console(highlight=False).print(table)


@runs_app.command("show")
@user_errors
def runs_show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    as_json: bool = typer.Option(False, "--json", help="Print the documented JSON object"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """One run: its settings and a row per round."""
    from sdd_tui.headless import summary_table

    record = open_store(ctx, home).get_run(run_id)
    status = display_status(record)
    if as_json:
        typer.echo(json.dumps(run_json(record, status), indent=2))
        return
    s = summary(record)
    console = Console(highlight=False)
    console.print(f"{record['id']}  {record.get('name')}  {status}  on {record.get('device')}")
    console.print(f"{s['model']} on {s['dataset']}, noise {s['noise']}, {s['rounds_done']}/{s['rounds_total']} rounds; "
                  + result_text(s))
    if record.get("error"):
        console.print(f"error: {record['error']}")
    if record.get("rounds"):
        console.print(summary_table(record["rounds"], "rounds"))
        for line in phases_lines(detect_phases(record["rounds"])):
            console.print(line, markup=False)
        for branch, phases in branch_phases(record["rounds"]).items():
            console.print(f"{branch} branch: " + "; ".join(phases_lines(phases)), markup=False)


@runs_app.command("export")
@user_errors
def runs_export(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv | json"),
    output: Path = typer.Option(..., "--output", "-o", help="File to write"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """Write a run's rounds to a CSV (one row per round, config columns included) or JSON file."""
    if fmt not in ("csv", "json"):
        raise SddError(f"--format {fmt!r}: use csv or json")
    record = open_store(ctx, home).get_run(run_id)
    text = csv_text(record) if fmt == "csv" else json.dumps(run_json(record, display_status(record)), indent=2)
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise SddError(f"cannot write {output} ({error.strerror}); choose another -o path") from None
    typer.echo(f"wrote {output}")


@runs_app.command("delete")
@user_errors
def runs_delete(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """Delete a run's record and folder (not while it runs)."""
    store = open_store(ctx, home)
    record = store.get_run(run_id)
    if not yes and sys.stdin.isatty():
        typer.confirm(f"delete run {record['id']} ({record.get('name')})?", abort=True)
    typer.echo(f"deleted {store.delete_run(record['id'])}")


# Commands defined in other modules register themselves on `app` when imported (one line each).
# (keep this block last)
from sdd_tui import (
    cli_analysis,  # noqa: E402,F401
    cli_bench,  # noqa: E402,F401
    cli_reliability,  # noqa: E402,F401
    cli_sweep,  # noqa: E402,F401
    cli_tui,  # noqa: E402,F401
)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
