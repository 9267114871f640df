"""`sdd-tui pause|unpause|stop ID`: steer a run that trains in any process, and wait for its answer.

The request goes through the run's control file (core.engine.run_control); the command waits until the run
has written its answer (PauseChanged, RunEnded) and exits 0, or says in one line why not (exit 1: not
within --timeout, or the run ended otherwise; exit 2: not running, unknown, or refused).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from sdd_tui.cli.options import HOME, open_store, user_errors
from sdd_tui.core.errors import SddError

RUN_ID = typer.Argument(..., help="Run id (or a unique prefix)")
TIMEOUT = typer.Option(60.0, "--timeout", min=0.0, help="Seconds to wait for the run's answer")


def _steer(ctx: typer.Context, run_id: str, home: Path | None, action: str, timeout: float) -> None:
    from sdd_tui.steer import Steering, wait_for_answer

    steering = Steering(open_store(ctx, home), run_id, action)
    if steering.already:
        typer.echo(steering.already)
        return
    steering.send(by=f"sdd-tui {action} (pid {os.getpid()})")
    answer = wait_for_answer(steering, timeout)
    if answer.code == 2:
        raise SddError(answer.text.removeprefix("error: "))
    typer.echo(answer.text, err=answer.code != 0)
    if answer.code:
        raise typer.Exit(answer.code)


@user_errors
def pause(ctx: typer.Context, run_id: str = RUN_ID, home: Optional[Path] = HOME, timeout: float = TIMEOUT) -> None:
    """Pause a running run at its next batch (started in the app, detached, headless or in a sweep)."""
    _steer(ctx, run_id, home, "pause", timeout)


@user_errors
def unpause(ctx: typer.Context, run_id: str = RUN_ID, home: Optional[Path] = HOME, timeout: float = TIMEOUT) -> None:
    """Let a paused run go on training."""
    _steer(ctx, run_id, home, "unpause", timeout)


@user_errors
def stop(ctx: typer.Context, run_id: str = RUN_ID, home: Optional[Path] = HOME, timeout: float = TIMEOUT) -> None:
    """Stop a running run at its next batch; its finished rounds and last epoch's checkpoint are kept."""
    _steer(ctx, run_id, home, "stop", timeout)


@user_errors
def start_detached(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="The new run's id"),
    config_json: str = typer.Argument(..., help="Its whole config, as JSON"),
    preset: Optional[str] = typer.Option(None, "--preset", help="The preset it came from"),
    home: Optional[Path] = HOME,
) -> None:
    """A new run from the app's form while another trains in the app: headless, in this (background) process."""
    import json

    from sdd_tui.core.config import validate_config
    from sdd_tui.core.paths import check_id
    from sdd_tui.headless import run_headless

    store = open_store(ctx, home)
    try:
        raw = json.loads(config_json)
    except ValueError as error:
        raise SddError(f"the config is not JSON ({error})") from None
    config = validate_config(raw, "the new-experiment form's config")
    status = run_headless(config, store, preset, run_id=check_id(run_id))
    if status != "finished":
        raise typer.Exit(130 if status == "stopped" else 1)
