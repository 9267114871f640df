"""`sdd-tui sweep` (run a grid of settings x seeds), `sdd-tui sweeps` (list, show, plot)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from core.errors import SddError
from core.events import Event, Message, RoundEnded, RunEnded, RunStarted
from core.format import pct as _pct, result_text
from core.results import summary
from core.store import Store
from core.sweep import (
    ENGINES,
    MemberRecorder,
    display_sweep_status,
    expand_sweep,
    group_by_point,
    member_config,
    member_records,
    member_status,
    new_sweep_record,
    parse_grid,
    parse_seeds,
    point_label,
    sweep_curves,
    sweep_status,
    unfinished_members,
)  # fmt: skip
from sdd_tui.cli import HOME_HELP, app, open_store, user_errors

sweeps_app = typer.Typer(help="Sweeps: list them, show one with its mean +- std curve, plot it.",
                         rich_markup_mode=None)
app.add_typer(sweeps_app, name="sweeps")

EXIT_CODES = {"finished": 0, "stopped": 130}


# ---------------------------------------------------------------------------- sweep


@app.command("sweep")
@user_errors
def sweep_command(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="The bundled preset every member starts from"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Or a TOML config file"),
    overrides: list[str] = typer.Option([], "--set", "-s", help="Override a field for every member: section.field=value"),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Seeds of every grid point: 0,1,2 or 0-4 (default: the config's)"),
    grid: list[str] = typer.Option([], "--grid", "-g", help="A swept field and its values: section.field=v1,v2 (repeatable)"),
    engine: Optional[str] = typer.Option(None, "--engine", "-e", help="local (default: one member per GPU) | ray"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto | ray://HOST:PORT (default: a local instance)"),
    max_parallel: Optional[int] = typer.Option(None, "--max-parallel", min=1, help="Local engine: members at once (default: one per GPU, or 1)"),
    cpus_per_member: Optional[float] = typer.Option(None, "--cpus-per-member", min=0.01, help="Ray: CPUs each member reserves (default 1)"),
    retries: int = typer.Option(3, "--retries", min=0, help="Ray: times a member whose worker or node dies is retried"),
    worker_home: Optional[Path] = typer.Option(None, "--worker-home", help="Ray: where workers keep checkpoints and data (default: --home; share it between nodes)"),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish the unfinished members of this sweep id"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the members and exit; store nothing"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """Run every combination of --grid values x --seeds, one ordinary run per member, as one sweep."""
    store = open_store(ctx, home)
    if resume:
        if preset or config or overrides or seeds or grid or dry_run:
            raise SddError("--resume takes the sweep id only (plus --engine/--address/--max-parallel/--home)")
        sweep = store.get_sweep(resume)
        members = unfinished_members(store, sweep)
        if not members:
            typer.echo(f"sweep {sweep['id']}: every member is finished; nothing to resume")
            return
    else:
        seed_list, grid_values = parse_seeds(seeds) if seeds else None, parse_grid(grid)
        members = expand_sweep(preset, config, overrides, seed_list, grid_values)
        if dry_run:
            for member in members:
                typer.echo(f"{member['run_id']}  {member['name']}")
            return
        sweep = None
    options = _engine_options(sweep, engine, address, max_parallel, cpus_per_member, worker_home, store)
    with _engine_session(options):  # a Ray cluster that cannot be reached is an error before anything is stored
        if sweep is None:
            seed_list = seed_list or sorted({m["seed"] for m in members})
            sweep = new_sweep_record(members, preset, config, overrides, seed_list, grid_values, options["engine"])
            store.create_sweep({**sweep, **options})
        store.update_sweep(sweep["id"], status="running", pid=os.getpid(), host=socket.gethostname(), **options)
        typer.echo(f"sweep {sweep['id']}: {len(members)} of {len(sweep['members'])} member(s) to run, "
                   f"engine {options['engine']}")
        status = _run_members(store, sweep, members, options, retries)
    _print_members(store, store.get_sweep(sweep["id"]))
    typer.echo(f"{status}: sweep {sweep['id']}; see `sdd-tui sweeps show {sweep['id']}`"
               + ("" if status == "finished" else f", continue with `sdd-tui sweep --resume {sweep['id']}`"))
    if status != "finished":
        raise typer.Exit(EXIT_CODES.get(status, 1))


def _engine_options(sweep, engine, address, max_parallel, cpus_per_member, worker_home, store: Store) -> dict:
    """The engine settings: what was given, else what the sweep used before, else the defaults."""
    previous = sweep or {}
    engine = engine or previous.get("engine") or "local"
    if engine not in ENGINES:
        raise SddError(f"--engine {engine!r}: use local or ray")
    chosen = {
        "engine": engine,
        "address": address if address is not None else previous.get("address"),
        "max_parallel": max_parallel or previous.get("max_parallel"),
        "cpus_per_member": cpus_per_member or previous.get("cpus_per_member") or 1.0,
        "worker_home": str(worker_home) if worker_home else previous.get("worker_home") or str(store.home),
    }
    if engine == "local" and address is not None:
        raise SddError("--address is for --engine ray; add --engine ray or drop --address")
    return chosen


def _engine_session(options: dict):
    if options["engine"] != "ray":
        return contextlib.nullcontext()
    from core.sweep_ray import ray_session

    return ray_session(options["address"])


def _run_members(store: Store, sweep: dict, members: list[dict], options: dict, retries: int) -> str:
    with _sigterm_as_interrupt():
        if options["engine"] == "local":
            outcomes, interrupted = _run_local(store, sweep, members, options["max_parallel"])
        else:
            from core.sweep_ray import run_ray

            outcomes, interrupted = run_ray(
                store, sweep, members, options["address"], worker_home=Path(options["worker_home"]),
                cpus_per_member=options["cpus_per_member"], retries=retries, report=RayReport())
    records = member_records(store, sweep)
    errors = {**sweep.get("errors", {}), **{run_id: outcome["error"] for run_id, outcome in outcomes.items()
                                            if run_id not in records and outcome.get("error")}}
    statuses = [member_status(records.get(m["run_id"])) for m in sweep["members"]]
    statuses = [("failed" if s == "queued" and m["run_id"] in errors else s) for s, m in zip(statuses, sweep["members"])]
    status = sweep_status(statuses)
    if interrupted and status != "finished":
        status = "stopped"
    store.update_sweep(sweep["id"], status=status, ended=time.time(), errors=errors)
    return status


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """`kill PID` stops a sweep the way Ctrl-C does."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_local(store: Store, sweep: dict, members: list[dict], max_parallel: int | None):
    from core.sweep_local import (
        launch_member,
        local_slots,
        run_local,
        settle_records,
        threads_per_member,
        visible_gpus,
    )  # fmt: skip

    slots = local_slots(visible_gpus(), max_parallel)
    threads = threads_per_member(os.cpu_count() or 1, len(slots))
    where = ", ".join(slots) if slots[0] else "devices as configured"
    typer.echo(f"{len(slots)} member(s) at a time ({where}); each member's output: <home>/runs/<id>/output.log")

    def report(kind: str, member: dict, detail: Any) -> None:
        if kind == "started":
            typer.echo(f"started  {member['run_id']}  {member['name']} on {detail}")
            return
        record = member_records(store, {"members": [member]}).get(member["run_id"])
        status = member_status(record) if record else f"exited {detail}"
        typer.echo(f"{status:<8} {member['run_id']}  {member['name']}{_result_text(record)}")

    exit_codes, interrupted = run_local(
        members, slots, lambda member, device: launch_member(store, sweep["id"], member, device, threads), report)
    settle_records(store, exit_codes)
    outcomes = {run_id: {"status": "failed", "error": _last_line(store, run_id)}
                for run_id, code in exit_codes.items() if code not in (0, 130)}
    return outcomes, interrupted


def _last_line(store: Store, run_id: str) -> str:
    try:
        lines = store.paths(run_id).output_log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "member process failed before writing output"
    return next((line for line in reversed(lines) if line.strip()), "member process failed without output")


def _result_text(record: dict | None) -> str:
    if not record or not record.get("rounds"):
        return ""
    s = summary(record)
    return f": {result_text(s)}"


class RayReport:
    """Prints a line when a Ray member starts, ends a round, or ends."""

    def __call__(self, member: dict, event: Event) -> None:
        name = member["name"]
        if isinstance(event, RunStarted):
            verb = f"resumed from round {event.resumed_from_round}" if event.resumed_from_round >= 0 else "started"
            typer.echo(f"{verb}  {event.run_id}  {name} on {event.device} @ {event.host}")
        elif isinstance(event, RoundEnded):
            r = event.result
            typer.echo(f"{name}: round {r['round']}/{event.rounds} sparsity {_pct(r['sparsity'])} "
                       f"test {_pct(r['test_acc'])}")
        elif isinstance(event, Message) and event.level != "info":
            typer.echo(f"{name}: {event.level}: {event.text}")
        elif isinstance(event, RunEnded):
            typer.echo(f"{event.status}  {event.run_id}  {name}" + (f": {event.error}" if event.error else ""))


# ---------------------------------------------------------------------------- one member (internal)


@app.command("sweep-member", hidden=True)
@user_errors
def sweep_member(
    ctx: typer.Context,
    sweep_id: str = typer.Argument(...),
    run_id: str = typer.Argument(...),
    device: Optional[str] = typer.Option(None, "--device"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """Run one member of a sweep by its run id (the local engine starts one process per member)."""
    from core.paths import checkpoint_exists

    store = open_store(ctx, home)
    sweep = store.get_sweep(sweep_id)
    member = next((m for m in sweep["members"] if m["run_id"] == run_id), None)
    if member is None:
        raise SddError(f"sweep {sweep['id']} has no member {run_id}; `sdd-tui sweeps show {sweep['id']}` lists them")
    config = member_config(member)
    if device:
        config.runtime.device = device
    status = _run_member(config, store, sweep, member, checkpoint_exists(store.home, run_id))
    if status != "finished":
        raise typer.Exit(EXIT_CODES.get(status, 1))


def _run_member(config, store: Store, sweep: dict, member: dict, resume: bool) -> str:
    """Run in this process, as a headless run that also records its sweep (stops as a headless run does)."""
    from sdd_tui.cli import run_headless

    return run_headless(config, store, sweep.get("preset"), run_id=member["run_id"], resume=resume,
                        recorder=MemberRecorder(store, sweep["id"]))


# ---------------------------------------------------------------------------- sweeps


@sweeps_app.callback(invoke_without_command=True)
@user_errors
def sweeps_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """All sweeps, newest first."""
    if ctx.invoked_subcommand:
        return
    store = open_store(ctx, home)
    rows = []
    for sweep in store.list_sweeps():
        statuses = [member_status(r) for r in _records_in_order(store, sweep)]
        rows.append({"id": sweep["id"], "name": sweep["name"], "engine": sweep.get("engine"),
                     "status": display_sweep_status(sweep), "members": len(statuses),
                     "finished": statuses.count("finished"), "created": sweep.get("created")})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no sweeps yet; start one with: sdd-tui sweep --preset digits-noise40 --seeds 0,1,2")
        return
    table = Table(box=None)
    for column in ("id", "name", "engine", "status", "finished", "created"):
        table.add_column(column, no_wrap=column in ("id", "created"))
    for row in rows:
        created = time.strftime("%m-%d %H:%M", time.localtime(row["created"] or 0))
        table.add_row(row["id"], row["name"], row["engine"], row["status"], f"{row['finished']}/{row['members']}",
                      created)
    Console(highlight=False).print(table)


def _records_in_order(store: Store, sweep: dict) -> list[dict | None]:
    records = member_records(store, sweep)
    return [records.get(m["run_id"]) for m in sweep["members"]]


@sweeps_app.command("show")
@user_errors
def sweeps_show(
    ctx: typer.Context,
    sweep_id: str = typer.Argument(..., help="Sweep id (or a unique prefix)"),
    as_json: bool = typer.Option(False, "--json", help="Print the sweep, its members and its curves as JSON"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """A sweep's members, and per grid point the mean +- std across seeds of every round."""
    store = open_store(ctx, home)
    sweep = store.get_sweep(sweep_id)
    curves = sweep_curves(store, sweep["id"])
    if as_json:
        members = [{k: v for k, v in m.items() if k != "config"} | {"status": member_status(r)}
                   for m, r in zip(sweep["members"], _records_in_order(store, sweep))]
        head = {k: v for k, v in sweep.items() if k != "members"} | {"status": display_sweep_status(sweep)}
        typer.echo(json.dumps({"sweep": head, "members": members, "curves": curves}, indent=2))
        return
    console = Console(highlight=False)
    console.print(f"{sweep['id']}  {display_sweep_status(sweep)} ({sweep.get('engine')})  {sweep['name']}")
    console.print(f"from {sweep.get('preset') or sweep.get('config_file') or 'the defaults'}"
                  + "".join(f" --set {o}" for o in sweep.get("overrides", []))
                  + "".join(f" --grid {k}={','.join(v)}" for k, v in sweep.get("grid", {}).items())
                  + f" --seeds {','.join(str(s) for s in sweep.get('seeds', []))}")
    _print_members(store, sweep, console)
    for curve in curves:
        console.print(_curve_table(curve))


def _print_members(store: Store, sweep: dict, console: Console | None = None) -> None:
    """A row per member, under a line naming its grid point."""
    console = console or Console(highlight=False)
    table = Table(title="members", box=None, title_justify="left")
    for column in ("run", "seed", "status", "rounds", "dense", "best", "at sparsity"):
        table.add_column(column, no_wrap=column != "run")
    errors = sweep.get("errors", {})
    records = member_records(store, sweep)
    for point, members in group_by_point(sweep["members"]):
        if point:
            table.add_row(point_label(point))
        for member in members:
            record = records.get(member["run_id"])
            status = "failed" if record is None and member["run_id"] in errors else member_status(record)
            s = summary(record) if record else None
            cells = [f"{s['rounds_done']}/{s['rounds_total']}", _pct(s["dense_acc"]), _pct(s["best_acc"]),
                     _pct(s["best_sparsity"])] if s else ["-"] * 4
            table.add_row(member["run_id"], str(member["seed"]), status, *cells)
    console.print(table)
    for run_id, error in errors.items():
        console.print(f"{run_id}: {error}")


def _band(row: dict, metric: str) -> str:
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    return "-" if mean is None else f"{100 * mean:.1f} ± {100 * std:.1f}"


def _curve_table(curve: dict) -> Table:
    seeds = ",".join(str(s) for s in curve["seeds"])
    table = Table(title=f"{curve['label']}: mean ± std over seeds {seeds}", box=None, title_justify="left")
    for column in ("round", "sparsity", "seeds", "test %", "best test %", "train %", "memorised %"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in curve["rounds"]:
        table.add_row(str(row["round"]), f"{100 * row['sparsity']:.2f}%", str(row["seeds"]), _band(row, "test_acc"),
                      _band(row, "best_test_acc"), _band(row, "train_acc"), _band(row, "noisy_memorized"))
    return table


@sweeps_app.command("plot")
@user_errors
def sweeps_plot(
    ctx: typer.Context,
    sweep_id: str = typer.Argument(..., help="Sweep id (or a unique prefix)"),
    output: Path = typer.Option(..., "--output", "-o", help="Image file to write (.png, .pdf, .svg)"),
    metric: str = typer.Option("test_acc", "--metric", "-m", help="test_acc | best_test_acc | train_acc | noisy_memorized | ..."),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """Draw the sweep's mean +- std bands of a metric against sparsity, one line per grid point."""
    from sdd_tui.sweep_plot import draw_sweep_curves

    store = open_store(ctx, home)
    sweep = store.get_sweep(sweep_id)
    draw_sweep_curves(sweep_curves(store, sweep["id"]), output, metric, title=f"{sweep['name']} ({sweep['id']})")
    typer.echo(f"wrote {output}")
