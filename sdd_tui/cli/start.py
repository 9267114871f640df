"""Starting and continuing runs: `sdd-tui --preset NAME` (headless), `sdd-tui` (the app), `sdd-tui resume ID`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from sdd_tui.cli.options import HOME, open_store, user_errors
from sdd_tui.core.errors import SddError


def show_version(value: bool) -> None:
    if value:
        from sdd_tui import __version__

        typer.echo(f"sdd-tui {__version__}")
        raise typer.Exit()


@user_errors
def root(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Run this bundled preset headless"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run the experiment in this TOML file"),
    from_run: Optional[str] = typer.Option(None, "--from-run", help="Start a new run with this stored run's config "
                                                                     "(--set changes fields)"),
    overrides: list[str] = typer.Option([], "--set", "-s", help="Override a field: section.field=value"),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="auto | cpu | cuda | cuda:N"),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the run (default: the preset's)"),
    home: Optional[Path] = HOME,
    tui: bool = typer.Option(False, "--tui", help="Start the run straight into its dashboard"),
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                 help="Print the version and exit"),
) -> None:
    """Run a sparse double descent experiment headless, or open the app with no arguments."""
    ctx.obj = {"home": home}
    if ctx.invoked_subcommand:
        return
    if not (preset or config or from_run):
        open_app(home)
        return
    from sdd_tui.core.config import override, resolve_config
    from sdd_tui.core.history.store import Store
    from sdd_tui.headless import run_headless

    extra = list(overrides)
    if device:
        extra.append(override("runtime.device", device))
    if name:
        extra.append(override("name", name))
    if from_run:
        experiment_config, preset = config_from_run(Store(home), from_run, preset or config, extra)
    else:
        experiment_config = resolve_config(preset, config, extra)
    if tui:
        open_app(home, start=(experiment_config, preset))
        return
    status = run_headless(experiment_config, Store(home), preset)
    if status != "finished":
        raise typer.Exit(130 if status == "stopped" else 1)


def config_from_run(store, run_id: str, other_source, overrides: list[str]):
    """(the stored run's config with `overrides`, its preset) for `--from-run ID`."""
    from sdd_tui.core.config import apply_overrides, validate_config

    if other_source:
        raise SddError("give --from-run, --preset or --config, one of them")
    record = store.run(run_id)
    if not record.config:
        raise SddError(f"run {record.id} has no stored config (its folder is gone); start from a preset instead")
    source = f"run {record.id}'s config" + (" with --set" if overrides else "")
    return validate_config(apply_overrides(record.config, overrides), source), record.preset


def open_app(home: Path | None, start=None, watch: str | None = None) -> None:
    from sdd_tui.app import SddApp
    from sdd_tui.core.history.store import Store

    SddApp(store=Store(home), start=start, watch=watch).run()


@user_errors
def resume(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    home: Optional[Path] = HOME,
) -> None:
    """Continue a stopped, failed or interrupted run from its last checkpoint, with its stored settings."""
    from sdd_tui.core.history.store import display_status
    from sdd_tui.headless import run_headless

    store = open_store(ctx, home)
    record = store.run(run_id)
    run_id = record.id
    if display_status(record) == "finished":
        raise SddError(f"run {run_id} is finished; nothing to resume (`sdd-tui runs show {run_id}` shows it)")
    if not store.run_dir(run_id).is_dir():
        raise SddError(f"run {run_id}'s folder {store.run_dir(run_id)} is gone (with its checkpoint); it cannot be "
                       f"resumed; start it again: sdd-tui --preset {record.preset or 'NAME'}")
    if record.rounds and not store.paths(run_id).checkpoint.exists():  # starting over would replace them
        raise SddError(f"run {run_id} has {len(record.rounds)} finished round(s) but no checkpoint.pt, so a resume "
                       f"would start it over and replace them; they are kept; start a new run instead: "
                       f"sdd-tui --preset {record.preset or 'NAME'}")
    # a run started before the seed tree goes on with the streams it started with (runtime.seed_scheme=1)
    config = record.experiment_config(f"run {run_id}'s stored config")
    before = store.claim_run(run_id)
    try:
        status = run_headless(config, store, record.preset, run_id=run_id, resume=True)
    except BaseException:
        _release(store, run_id, before)
        raise
    if status != "finished":
        raise typer.Exit(130 if status == "stopped" else 1)


def _release(store, run_id: str, before: dict) -> None:
    """A resume that failed before the run started leaves the record as it found it."""
    try:
        record = store.run(run_id)
    except SddError:
        return
    if record.status == "running" and record.pid == os.getpid():
        store.update_run(run_id, status=before.get("status"), pid=before.get("pid"), host=before.get("host"))
