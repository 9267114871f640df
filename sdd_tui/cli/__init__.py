"""`sdd-tui`: the Typer command line. Without a subcommand: a headless run (--preset/--config) or the app.

Every command is added here, in one place; each module of this package holds one group of commands
and imports only `sdd_tui.cli.options` from the CLI, so there is no import circle. Heavy libraries
(torch, matplotlib, Textual) are imported inside the commands that need them: `sdd-tui --help`,
`sdd-tui presets` and `sdd-tui runs` start fast.
"""

from __future__ import annotations

import io
import os
import sys

import typer

from sdd_tui.cli import analysis, bench, branch, control, doctor, history, presets, report, start, sweeps, watch
from sdd_tui.core.engine.openmp import set_wait_default

HELP = ("Run, watch and compare sparse double descent experiments. Without a command: a headless run "
        "(--preset NAME or --config FILE), or the interactive app.")
app = typer.Typer(help=HELP, rich_markup_mode=None)
app.callback(invoke_without_command=True)(start.root)
app.command("resume")(start.resume)
app.command("watch")(watch.watch)
app.command("pause")(control.pause)
app.command("unpause")(control.unpause)
app.command("stop")(control.stop)
app.command("start-detached", hidden=True)(control.start_detached)
app.add_typer(presets.app, name="presets")
app.add_typer(history.app, name="runs")
app.command("analyze")(analysis.analyze)
app.command("plot")(analysis.plot)
app.command("branch")(branch.branch)
app.command("report")(report.report)
app.command("sweep")(sweeps.sweep_command)
app.command("sweep-member", hidden=True)(sweeps.sweep_member)
app.command("sweep-cohort", hidden=True)(sweeps.sweep_cohort)
app.add_typer(sweeps.sweeps_app, name="sweeps")
app.command("doctor")(doctor.doctor)
app.command("bench")(bench.bench)


class _Stdout(io.FileIO):
    """File descriptor 1, remembering whether writing to it failed: an OSError from it (a full disk,
    /dev/full, EIO) is then told apart from one of a file the command wrote."""

    failed = False

    def write(self, data) -> int:
        try:
            return super().write(data)
        except OSError:
            self.failed = True
            raise


def _watch_stdout() -> _Stdout | None:
    """sys.stdout rebuilt over a `_Stdout` (same encoding, errors and line buffering); None where stdout is
    not descriptor 1 (pytest's capture, a closed stdout)."""
    try:
        if sys.stdout is None or sys.stdout.fileno() != 1:
            return None
    except (OSError, ValueError, AttributeError):
        return None
    old = sys.stdout
    old.flush()
    raw = _Stdout(1, "w", closefd=False)
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(raw), encoding=old.encoding, errors=old.errors,
                                  line_buffering=old.line_buffering)
    return raw


def _stdout_failed(error: OSError) -> SystemExit:
    """One line on stderr, exit 2; fd 1 then points at /dev/null, so the interpreter's own flush at exit
    neither fails again nor prints 'Exception ignored'."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    sys.stderr.write(f"error: cannot write the output ({error.strerror or error}); is the disk it goes to full? "
                     f"send it elsewhere\n")
    sys.stderr.flush()
    return SystemExit(2)


def main() -> None:
    """The `sdd-tui` script and `python -m sdd_tui`: a program of its own, so it may set OpenMP's waiting
    policy for itself, before anything imports torch (a library import never does)."""
    set_wait_default(os.environ)
    stdout = _watch_stdout()
    try:
        try:
            app(prog_name="sdd-tui")
        finally:  # what is still buffered: its failure is reported here, not after exit
            sys.stdout.flush()
    except OSError as error:
        if stdout is None or not stdout.failed:
            raise
        raise _stdout_failed(error) from None
