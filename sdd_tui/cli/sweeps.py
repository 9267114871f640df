"""`sdd-tui sweep` (run a grid of settings x seeds), `sdd-tui sweeps` (list, show, plot)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from sdd_tui.cli.options import HOME, open_store, user_errors
from sdd_tui.core.errors import SddError
from sdd_tui.core.format import printable

if TYPE_CHECKING:
    from sdd_tui.core.history.records import SweepRecord

sweeps_app = typer.Typer(help="Sweeps: list them, show one with its mean +- std curve, plot it.",
                         rich_markup_mode=None)


# ---------------------------------------------------------------------------- sweep


@user_errors
def sweep_command(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="The bundled preset every member starts from"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Or a TOML config file"),
    overrides: list[str] = typer.Option([], "--set", "-s", help="Override a field for every member: section.field=value"),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Seeds of every grid point: 0,1,2 or 0-4 (default: the config's)"),
    grid: list[str] = typer.Option([], "--grid", "-g", help="A swept field and its values: section.field=v1,v2 (repeatable)"),
    levels: Optional[str] = typer.Option(None, "--levels", help="One-shot levels as members sharing a dense member: 1-16 or 1,2,5"),
    engine: Optional[str] = typer.Option(None, "--engine", "-e", help="local (default: one member per GPU) | ray"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto | ray://HOST:PORT (default: a local instance)"),
    max_parallel: Optional[int] = typer.Option(None, "--max-parallel", min=1, help="Local engine: members at once (default: one per GPU, or 1)"),
    cpus_per_member: Optional[float] = typer.Option(None, "--cpus-per-member", min=0.01, help="Ray: CPUs each member reserves (default 1)"),
    retries: int = typer.Option(3, "--retries", min=0, help="Ray: times a member whose worker or node dies is retried"),
    worker_home: Optional[Path] = typer.Option(None, "--worker-home", help="Ray: where workers keep checkpoints and data (default: --home; share it between nodes)"),
    pack: Optional[bool] = typer.Option(None, "--pack/--no-pack", help="Train members that share network, data and "
                                        "schedule (MLP family) as packed cohorts, one process each (local engine)"),
    pack_size: Optional[int] = typer.Option(None, "--pack-size", min=1, help="--pack: members per cohort at most "
                                            "(default 32)"),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish the unfinished members of this sweep id"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the members and exit; store nothing"),
    home: Optional[Path] = HOME,
) -> None:
    """Run every combination of --grid values x --seeds, one ordinary run per member, as one sweep."""
    from sdd_tui.core.history.records import SweepRecord
    from sdd_tui.core.sweeps.sweep import expand_sweep, new_sweep_record, parse_grid, parse_seeds, unfinished_members
    from sdd_tui.core.sweeps.sweep_levels import parse_levels, run_in_phases, with_levels
    from sdd_tui.core.sweeps.sweep_runner import EXIT_CODES, engine_options, engine_session, holding_sweep, run_sweep

    store = open_store(ctx, home)
    held = contextlib.ExitStack()
    if resume:
        if preset or config or overrides or seeds or grid or levels or dry_run:
            raise SddError("--resume takes the sweep id only (plus --engine/--address/--max-parallel/--pack/--home)")
        sweep = store.sweep(resume)
        held.enter_context(holding_sweep(store, sweep.id))  # held until this command ends
        members = unfinished_members(store, sweep)
        if not members:
            held.close()
            typer.echo(f"sweep {sweep.id}: every member is finished; nothing to resume")
            return
    else:
        seed_list, grid_values = parse_seeds(seeds) if seeds else None, parse_grid(grid)
        members = expand_sweep(preset, config, overrides, seed_list, grid_values)
        if levels:
            members = with_levels(members, parse_levels(levels, members))
        sweep = None
    with held:  # released by any error before the sweep runs
        options = engine_options(sweep, engine, address, max_parallel, cpus_per_member, worker_home, store, pack,
                                 pack_size, retries)
        held = held.pop_all()
    if dry_run:
        for member in members:
            typer.echo(printable(f"{member['run_id']}  {member['name']}"))
        if options.pack:
            _echo_pack_plan(members, options)
        return
    with held, engine_session(options):  # a Ray cluster that cannot be reached is an error before anything is stored
        create = sweep is None
        if create:
            seed_list = seed_list or sorted({m["seed"] for m in members})
            sweep = SweepRecord.parse({
                **new_sweep_record(members, preset, config, overrides, seed_list, grid_values, options.engine),
                "levels": parse_levels(levels) if levels else None})
            held.enter_context(holding_sweep(store, sweep.id, "run"))
        say = lambda line: typer.echo(printable(line))  # noqa: E731
        status = run_in_phases(store, sweep, members, lambda phase, first: run_sweep(
            store, sweep, phase, options, say, first), say, create)
    from sdd_tui.cli.sweep_tables import print_members

    print_members(store, store.sweep(sweep.id))
    typer.echo(f"{status}: sweep {sweep.id}; see `sdd-tui sweeps show {sweep.id}`"
               + ("" if status == "finished" else f", continue with `sdd-tui sweep --resume {sweep.id}`"))
    if status != "finished":
        raise typer.Exit(EXIT_CODES.get(status, 1))


def _echo_pack_plan(members: list[dict], options) -> None:
    from sdd_tui.core.sweeps.sweep_runner import pack_plan_lines

    for line in pack_plan_lines(members, options.max_parallel, options.pack_size):
        typer.echo(line)


# ---------------------------------------------------------------------------- one member, one cohort (internal)


@user_errors
def sweep_member(
    ctx: typer.Context,
    sweep_id: str = typer.Argument(...),
    run_id: str = typer.Argument(...),
    device: Optional[str] = typer.Option(None, "--device"),
    home: Optional[Path] = HOME,
) -> None:
    """Run one member of a sweep by its run id (the local engine starts one process per member)."""
    from sdd_tui.core.paths import checkpoint_exists
    from sdd_tui.core.sweeps.sweep_runner import EXIT_CODES

    store = open_store(ctx, home)
    sweep = store.sweep(sweep_id)
    member = sweep.member(run_id)
    status = _run_member(_config_on(member, device), store, sweep, member, checkpoint_exists(store.home, run_id))
    if status != "finished":
        raise typer.Exit(EXIT_CODES.get(status, 1))


@user_errors
def sweep_cohort(
    ctx: typer.Context,
    sweep_id: str = typer.Argument(...),
    run_ids: str = typer.Argument(..., help="The members' run ids, comma-separated"),
    device: Optional[str] = typer.Option(None, "--device"),
    home: Optional[Path] = HOME,
) -> None:
    """Run members of a sweep as one packed cohort in this process (the local engine's --pack); exits 1 when
    a member failed, 130 when one stopped."""
    from sdd_tui.core.history.store import Store
    from sdd_tui.core.paths import checkpoint_exists
    from sdd_tui.core.sweeps.sweep import MemberRecorder
    from sdd_tui.core.sweeps.sweep_runner import EXIT_CODES
    from sdd_tui.headless import run_cohort_headless

    store = open_store(ctx, home)
    sweep = store.sweep(sweep_id)
    members = [sweep.member(run_id) for run_id in run_ids.split(",")]
    runs = [(_config_on(m, device), m["run_id"], checkpoint_exists(store.home, m["run_id"])) for m in members]
    # each member records from its own thread: its own Store, so that each holds the file lock by itself
    statuses = run_cohort_headless(runs, store, sweep.preset, lambda: MemberRecorder(Store(store.home), sweep.id))
    worst = "failed" if "failed" in statuses.values() else "stopped" if "stopped" in statuses.values() else "finished"
    if worst != "finished":
        raise typer.Exit(EXIT_CODES.get(worst, 1))


def _config_on(member: dict, device: str | None):
    """The member's config, on `device` when the engine gave one."""
    from sdd_tui.core.sweeps.sweep import member_config

    config = member_config(member)
    if device:
        config.runtime.device = device
    return config


def _run_member(config, store, sweep: SweepRecord, member: dict, resume: bool) -> str:
    """Run in this process, as a headless run that also records its sweep (stops as a headless run does)."""
    from sdd_tui.core.sweeps.sweep import MemberRecorder
    from sdd_tui.headless import run_headless

    return run_headless(config, store, sweep.preset, run_id=member["run_id"], resume=resume,
                        recorder=MemberRecorder(store, sweep.id))


# ---------------------------------------------------------------------------- sweeps


@sweeps_app.callback(invoke_without_command=True)
@user_errors
def sweeps_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list"),
    home: Optional[Path] = HOME,
) -> None:
    """All sweeps, newest first."""
    if ctx.invoked_subcommand:
        return
    from sdd_tui.cli.sweep_tables import print_sweep_rows
    from sdd_tui.core.sweeps.sweep import sweep_rows

    rows = sweep_rows(open_store(ctx, home))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no sweeps yet; start one with: sdd-tui sweep --preset digits-noise40 --seeds 0,1,2")
        return
    print_sweep_rows(rows)


@sweeps_app.command("show")
@user_errors
def sweeps_show(
    ctx: typer.Context,
    sweep_id: str = typer.Argument(..., help="Sweep id (or a unique prefix)"),
    as_json: bool = typer.Option(False, "--json", help="Print the sweep, its members and its curves as JSON"),
    home: Optional[Path] = HOME,
) -> None:
    """A sweep's members, and per grid point the mean +- std across seeds of every round."""
    from rich.console import Console

    from sdd_tui.cli.sweep_tables import curve_table, print_members, records_in_order
    from sdd_tui.core.sweeps.sweep import display_sweep_status, member_status, origin_text, sweep_curves

    store = open_store(ctx, home)
    sweep = store.sweep(sweep_id)
    curves = sweep_curves(store, sweep.id)
    if as_json:
        members = [{k: v for k, v in m.items() if k != "config"} | {"status": member_status(r)}
                   for m, r in zip(sweep.members, records_in_order(store, sweep))]
        head = {k: v for k, v in sweep.to_dict().items() if k != "members"} | {"status": display_sweep_status(sweep)}
        typer.echo(json.dumps({"sweep": head, "members": members, "curves": curves}, indent=2))
        return
    console = Console(highlight=False, markup=False)
    engine = (sweep.engine or "") + (", packed" if sweep.pack else "")
    console.print(printable(f"{sweep.id}  {display_sweep_status(sweep)} ({engine})  {sweep.name}"))
    console.print(printable(origin_text(sweep)))
    print_members(store, sweep, console)
    for curve in curves:
        console.print(curve_table(curve))


@sweeps_app.command("plot")
@user_errors
def sweeps_plot(
    ctx: typer.Context,
    sweep_id: str = typer.Argument(..., help="Sweep id (or a unique prefix)"),
    output: Path = typer.Option(..., "--output", "-o", help="Image file to write (.png, .pdf, .svg)"),
    metric: str = typer.Option("test_acc", "--metric", "-m", help="test_acc | best_test_acc | train_acc | noisy_memorized | ..."),
    home: Optional[Path] = HOME,
) -> None:
    """Draw the sweep's mean +- std bands of a metric against sparsity, one line per grid point
    (the figure `sdd-tui plot --sweep` writes)."""
    from sdd_tui.core.analysis.figures import save_figure
    from sdd_tui.sweep_plot import sweep_figure

    typer.echo(f"wrote {save_figure(sweep_figure(open_store(ctx, home), sweep_id, metric), output)}")
