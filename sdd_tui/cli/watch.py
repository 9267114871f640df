"""`sdd-tui watch [RUN_ID]`: open the dashboard on a run started elsewhere and follow its events."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sdd_tui.cli.options import HOME, open_store, user_errors
from sdd_tui.core.errors import SddError


def run_to_watch(store, run_id: str | None) -> str:
    """The run `run_id` (or a unique prefix), or the latest running run."""
    from sdd_tui.core.history.store import display_status

    if run_id:
        return store.run(run_id).id
    running = [r for r in store.summaries() if display_status(r) == "running"]
    if not running:
        raise SddError("no run is running; give a RUN_ID (`sdd-tui runs` lists them) or start one with "
                       "sdd-tui --preset NAME")
    return running[0]["id"]


@user_errors
def watch(
    ctx: typer.Context,
    run_id: Optional[str] = typer.Argument(None, help="Run id or unique prefix (default: the latest running run)"),
    home: Optional[Path] = HOME,
) -> None:
    """Follow a run live in the dashboard (closing the viewer never stops the run)."""
    from sdd_tui.app import SddApp

    store = open_store(ctx, home)
    SddApp(store=store, watch=run_to_watch(store, run_id)).run()
