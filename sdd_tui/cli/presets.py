"""`sdd-tui presets` and `sdd-tui presets show NAME`."""

from __future__ import annotations

import typer

from sdd_tui.cli.options import user_errors

app = typer.Typer(help="List bundled presets, or show one.", rich_markup_mode=None)


@app.callback(invoke_without_command=True)
@user_errors
def presets_list(ctx: typer.Context) -> None:
    """Names of the bundled presets with their one-line descriptions."""
    if ctx.invoked_subcommand:
        return
    from sdd_tui.core.presets import preset_descriptions

    descriptions = preset_descriptions()
    width = max(len(name) for name in descriptions)
    for name, description in descriptions.items():
        typer.echo(f"{name:<{width}}  {description}")


@app.command("show")
@user_errors
def presets_show(name: str) -> None:
    """The full configuration of a preset, as TOML."""
    from sdd_tui.core.config import config_to_toml, load_preset

    typer.echo(config_to_toml(load_preset(name)), nl=False)
