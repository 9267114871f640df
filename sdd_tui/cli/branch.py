"""`sdd-tui branch ID reinit|random-prune --rounds 1-27`: branches trained on a finished run's stored rounds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from sdd_tui.cli.options import HOME, open_store, user_errors
from sdd_tui.core.errors import SddError

if TYPE_CHECKING:
    from sdd_tui.core.history.records import RunRecord

KINDS_HELP = "reinit (same masks, fresh init) | random-prune (random masks, same per-layer sparsity)"


@user_errors
def branch(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    kind: str = typer.Argument(..., help=KINDS_HELP),
    rounds: str = typer.Option("", "--rounds", help="Rounds to branch: 1-27 or 1,5,9 (default: every pruned round)"),
    again: bool = typer.Option(False, "--again", help="Train rounds that already have this branch again"),
    start: Optional[str] = typer.Option(
        None, "--start", help="random-prune: official (default: the round's start weights times the ticket's masks, "
                              "as the official randomly_prune) | dense (those weights unmasked)"),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="auto | cpu | cuda | cuda:N (default: the run's)"),
    home: Optional[Path] = HOME,
) -> None:
    """Train a branch of each of a run's stored rounds; stored with the run, drawn dashed by `plot` and the app."""
    from sdd_tui.core.analysis.finished_run_branches import RANDOM_PRUNE_STARTS, branch_kind, check_start
    from sdd_tui.core.config import is_device_name, most_rounds
    from sdd_tui.core.history.store import display_status
    from sdd_tui.core.ranges import parse_ranges

    if device is not None and not is_device_name(device):
        raise SddError(f"--device {device!r}: use auto, cpu, cuda or cuda:N")
    chosen = branch_kind(kind)
    if start is not None and not chosen.random_masks:
        raise SddError(f"--start is for random-prune (the {kind} branch starts from a fresh init); leave it out")
    start = check_start(start or RANDOM_PRUNE_STARTS[0])
    store = open_store(ctx, home)
    record = store.run(run_id)
    # Bounded before a list is built (1-1000000000000 was a MemoryError); rounds past this run's are then
    # named with the rounds it has.
    wanted = parse_ranges(rounds, "--rounds", "1-27 or 1,5,9", low=0, high=most_rounds(),
                          what="round a run can have (prune.rounds)") if rounds else None
    if display_status(record) == "running":
        raise SddError(f"run {record.id} is still running; branch it once it has finished or stopped")
    _train(store, record, chosen, wanted, again, device, start)


def _train(store, record: RunRecord, kind, wanted: list[int] | None, again: bool, device: str | None,
           start: str) -> None:
    from sdd_tui.core.engine.runtime_context import run_context

    runtime = record.experiment_config().runtime
    with run_context(threads=runtime.threads):
        _train_in_context(store, record, kind, wanted, again, device or runtime.device, start)


def _train_in_context(store, record: RunRecord, kind, wanted: list[int] | None, again: bool, device: str,
                      start: str) -> None:
    from sdd_tui.core.analysis.finished_run_branches import (
        branch_line,
        open_run,
        rounds_to_branch,
        store_branch,
        train_finished_branch,
    )
    from sdd_tui.core.engine.device import resolve_device
    from sdd_tui.core.engine.training import Control
    from sdd_tui.core.format import pct

    run = open_run(record, store.home, resolve_device(device), typer.echo)
    todo = rounds_to_branch(run, kind, wanted, again, typer.echo)
    epochs = run.config.train.epochs

    def on_epoch(stats) -> None:
        typer.echo(f"  epoch {stats.epoch + 1}/{epochs}: train loss {stats.train_loss:.4f}, test {pct(stats.test_acc)}")

    try:
        for index in todo:
            typer.echo(f"round {index}: training its {kind.key} branch"
                       + (f" (--start {start})" if kind.random_masks else ""))
            summary, entries = train_finished_branch(run, kind, index, Control(), on_epoch, start)
            store_branch(store, run, kind, index, summary, entries)
            typer.echo(branch_line(index, kind, summary, run.rounds[index]))
    except KeyboardInterrupt:
        typer.echo("stopped; the rounds trained so far are stored; the same command goes on with the others")
        raise typer.Exit(130) from None
    if todo:
        typer.echo(f"stored under '{kind.key}' in the rounds of run {run.run_id}; "
                   f"draw it with `sdd-tui plot {run.run_id} -o figure.png`")
