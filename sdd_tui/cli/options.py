"""What every command shares: the --home option, the home it resolves to, and one-line user errors.

Imports stay light (typer and the project's error type): `sdd-tui --help` must start fast.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from sdd_tui.core.errors import SddError
from sdd_tui.core.format import printable

if TYPE_CHECKING:
    from sdd_tui.core.history.store import Store

HOME_HELP = "Where runs are stored (default: $SDD_TUI_HOME or the user data dir)"


def parse_home(value: str) -> Path | str:
    """A Path, but '' stays '' (a Path would read it as '.'): `Store` refuses an empty home."""
    return Path(value) if value else ""


# the default of every command's `home`
HOME: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP, parser=parse_home, metavar="DIR")


def user_errors(command):
    """Print a user error as one `error: ...` line on stderr and exit 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SddError as error:
            typer.echo(f"error: {printable(error)}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def resolve_home(ctx: typer.Context, home: Path | None) -> Path | None:
    """A command's own --home, else the one given before the command (`sdd-tui --home DIR runs`)."""
    if home is not None:
        return home
    root = ctx.find_root()
    return (root.obj or {}).get("home") if root else None


def open_store(ctx: typer.Context, home: Path | None) -> Store:
    from sdd_tui.core.history.store import Store

    return Store(resolve_home(ctx, home))
