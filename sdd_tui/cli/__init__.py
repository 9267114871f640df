"""`sdd-tui`: the Typer command line. Without a subcommand: a headless run (--preset/--config) or the app.

Every command is added here, in one place; each module of this package holds one group of commands
and imports only `sdd_tui.cli.options` from the CLI, so there is no import circle. Heavy libraries
(torch, matplotlib, Textual) are imported inside the commands that need them: `sdd-tui --help`,
`sdd-tui presets` and `sdd-tui runs` start fast.
"""

from __future__ import annotations

import typer

from sdd_tui.cli import analysis, bench, branch, control, doctor, history, presets, start, sweeps, watch

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
app.command("sweep")(sweeps.sweep_command)
app.command("sweep-member", hidden=True)(sweeps.sweep_member)
app.command("sweep-cohort", hidden=True)(sweeps.sweep_cohort)
app.add_typer(sweeps.sweeps_app, name="sweeps")
app.command("doctor")(doctor.doctor)
app.command("bench")(bench.bench)


def main() -> None:
    app(prog_name="sdd-tui")
