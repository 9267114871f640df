"""`sdd-tui analyze` (phases, re-dense training and interpolation) and `sdd-tui plot` (figures)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from sdd_tui.cli.options import HOME, open_store, user_errors
from sdd_tui.core.analysis.phases import detect_phases, phases_lines
from sdd_tui.core.errors import SddError
from sdd_tui.core.format import pct as _pct


def parse_rounds(text: str) -> list[int]:
    """`5,10,20` -> [5, 10, 20]; anything else is a user error."""
    try:
        rounds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SddError(f"--rounds {text!r}: give round numbers separated by commas, e.g. --rounds 5,10,20") from None
    if not rounds or any(r < 0 for r in rounds):
        raise SddError(f"--rounds {text!r}: give round numbers >= 0 separated by commas, e.g. --rounds 5,10,20")
    return list(dict.fromkeys(rounds))


@user_errors
def analyze(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    redense: bool = typer.Option(False, "--redense", help="Re-dense train stored rounds and interpolate back"),
    rounds: str = typer.Option("", "--rounds", help="Rounds to analyse, e.g. 5,10,20"),
    epochs: Optional[int] = typer.Option(None, "--epochs", "-t", help="Re-dense epochs (default 10)"),
    official: bool = typer.Option(False, "--official", help="The official re-dense: retrain the ticket from the "
                                                           "rewind point, then T epochs dense, the schedule going on"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Re-dense LR (default: the last LR of the sparse round)"),
    steps: int = typer.Option(101, "--interp-steps", help="Points from sparse to re-dense (101: step 0.01)"),
    filter_normalized: bool = typer.Option(False, "--filter-normalized", help="Also 1-D filter-normalised loss plots"),
    filter_points: int = typer.Option(41, "--filter-points", help="Points of each filter-normalised plot"),
    branch: str = typer.Option("main", "--branch", help="main | reinit | random_prune (a branch the rounds have)"),
    bn: str = typer.Option("interpolate", "--bn", help="Batch-norm statistics along the line: interpolate (like the "
                                                       "weights) | recompute (on training batches at every point)"),
    bn_samples: Optional[int] = typer.Option(None, "--bn-samples", help="With --bn recompute: training samples to use "
                                                                       "(default: all)"),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="auto | cpu | cuda | cuda:N (default: run's)"),
    home: Optional[Path] = HOME,
) -> None:
    """A run's phases; with --redense, minima flatness of stored rounds (stored with the run)."""
    from sdd_tui.core.analysis.redense_options import RedenseOptions
    from sdd_tui.core.config import is_device_name

    options = None
    if redense:  # checked before anything is read or trained
        options = RedenseOptions(
            rounds=tuple(parse_rounds(rounds)) if rounds else (), epochs=epochs, steps=steps, branch=branch,
            filter_points=filter_points if filter_normalized else 0, device=device, lr=lr, bn=bn,
            bn_samples=bn_samples, official=official)
    elif device is not None and not is_device_name(device):
        raise SddError(f"--device {device!r}: use auto, cpu, cuda or cuda:N")
    store = open_store(ctx, home)
    record = store.run(run_id)
    for line in phases_lines(detect_phases(record.rounds)):
        typer.echo(line)
    if options is None:
        return
    from sdd_tui.core.analysis.flatness import analyze_run

    results = analyze_run(record, store.home, options, progress=typer.echo)
    key = options.result_key
    new = {k: {**v, "created": time.time()} for k, v in results.items()}

    def with_results(meta: dict) -> dict:  # read again under the run's lock: another analysis may have ended
        analyses = dict(meta.get("analyses") or {})
        analyses[key] = {**(analyses.get(key) or {}), **new}
        return {"analyses": analyses}

    store.change_run(record.id, with_results)
    for result in results.values():
        typer.echo(_redense_line(result))
    typer.echo(f"stored under analyses.{key} of run {record.id}; draw it with "
               f"`sdd-tui plot --interpolation {record.id} -o flatness.png`")


def _redense_line(result: dict) -> str:
    line = result["interpolation"]
    worst = max(line, key=lambda p: p["train_loss"])
    sparse, dense = result["sparse"], result["redense"]
    return (f"round {result['round']} ({_pct(result['sparsity'])} sparse): sparse test {_pct(sparse['test_acc'])} "
            f"train {_pct(sparse['train_acc'])} -> re-dense test {_pct(dense['test_acc'])} "
            f"train {_pct(dense['train_acc'])}; highest train loss on the line "
            f"{worst['train_loss']:.3f} at a={worst['alpha']:.2f}")


@user_errors
def plot(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(None, help="Runs to draw (runs differing only by seed: mean +- std)"),
    output: Path = typer.Option(..., "--output", "-o", help="Figure file: .png, .pdf or .svg"),
    metric: str = typer.Option("test_acc", "--metric", "-m",
                               help="test_acc (Figure 1: test and train) | learning_distance | best_test_acc | ..."),
    interpolation: Optional[str] = typer.Option(None, "--interpolation", help="Draw this run's re-dense analysis"),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="Draw every member of this sweep (seeds: mean +- std)"),
    branch: str = typer.Option("main", "--branch", help="With --interpolation: main | reinit | random_prune"),
    home: Optional[Path] = HOME,
) -> None:
    """Write the paper's figures with matplotlib."""
    from sdd_tui.core.analysis.figures import check_metric, figure_one, interpolation_figure, save_figure
    from sdd_tui.sweep_plot import sweep_figure

    store = open_store(ctx, home)
    if sum(bool(x) for x in (run_ids, interpolation, sweep)) > 1:
        raise SddError("give run ids, --sweep ID or --interpolation ID (flatness figure), one of them")
    if sweep:
        figure = sweep_figure(store, sweep, metric)  # the figure `sdd-tui sweeps plot` writes
    elif interpolation:
        figure = interpolation_figure(store.run(interpolation), branch)
    else:
        if not run_ids:
            raise SddError("give one or more run ids, or --interpolation ID; `sdd-tui runs` lists the runs")
        figure = figure_one([store.run(r) for r in run_ids], check_metric(metric))
    typer.echo(f"wrote {save_figure(figure, output)}")
