"""The command palette (Ctrl+P): the app's commands, then the current screen's own keys as commands.

An app command is one line of APP_COMMANDS: its title (what the palette searches), a line of help, and
a function of (app, screen) that does it. The screen's own commands are its bindings that apply now
(a dashboard's Pause only while its run trains), titled by their description.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

TEXTUAL_KEPT = ("Theme", "Screenshot", "Quit")  # of Textual's own commands (Keys and Maximize: `?` lists keys)


def new_experiment(app: App, screen: Screen) -> None:
    from sdd_tui.core.config import preset_names
    from sdd_tui.screens.new_experiment import NewExperimentScreen

    if hasattr(screen, "action_new"):  # home: the highlighted preset
        screen.action_new()
    else:
        app.push_screen(NewExperimentScreen(preset_names()[0]))


def new_sweep(app: App, screen: Screen) -> None:
    from sdd_tui.screens.new_sweep import NewSweepScreen

    app.push_screen(NewSweepScreen())


def history(app: App, screen: Screen) -> None:
    from sdd_tui.screens.history import HistoryScreen

    if not isinstance(screen, HistoryScreen):
        app.push_screen(HistoryScreen())


def sweeps(app: App, screen: Screen) -> None:
    from sdd_tui.screens.sweeps import SweepsScreen

    if not isinstance(screen, SweepsScreen):
        app.push_screen(SweepsScreen())


def watch(app: App, screen: Screen) -> None:
    run_id = app.latest_running_run()
    if run_id is None:
        app.notify("no run is training; start one with n, or headless with sdd-tui --preset NAME", severity="warning")
    else:
        app.open_run(run_id)


def compare(app: App, screen: Screen) -> None:
    from sdd_tui.screens.history import HistoryScreen

    if isinstance(screen, HistoryScreen):
        screen.action_compare()
        return
    app.push_screen(HistoryScreen())
    app.notify("select the runs to compare with space, then press c")


def export(app: App, screen: Screen) -> None:
    if hasattr(screen, "action_export"):
        screen.action_export()
    else:
        app.notify("open a run first (Enter on it in home or history), then export with e", severity="warning")


@dataclass(frozen=True)
class AppCommand:
    title: str
    help: str
    run: Callable[[App, Screen], None]


APP_COMMANDS: tuple[AppCommand, ...] = (
    AppCommand("New experiment", "a form seeded from a preset (n on home)", new_experiment),
    AppCommand("New sweep", "seeds x grid in the background (n on sweeps)", new_sweep),
    AppCommand("History", "every stored run: filter, sort, compare (h on home)", history),
    AppCommand("Sweeps", "every sweep and its members (s on home)", sweeps),
    AppCommand("Watch", "the dashboard of the run training now (w on home)", watch),
    AppCommand("Compare", "the runs selected in history (space, then c)", compare),
    AppCommand("Export", "the open run's CSV, JSON and figure (e on its dashboard)", export),
    # the report command goes here: AppCommand("Report", "...", report)
)


def screen_commands(screen: Screen) -> list[SystemCommand]:
    """The screen's own bindings that apply now, as commands titled by their description."""
    own = {binding.action for binding in type(screen).BINDINGS if isinstance(binding, Binding)}
    commands: dict[str, SystemCommand] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if active.node is not screen or binding.action not in own or not active.enabled or not binding.description:
            continue
        if binding.description not in commands:
            commands[binding.description] = SystemCommand(
                binding.description, f"{screen.app.get_key_display(binding)} on this screen",
                partial(screen.run_action, binding.action))
    return list(commands.values())


def palette_commands(app: App, screen: Screen, textual: Iterable[SystemCommand]) -> Iterable[SystemCommand]:
    """The screen's own commands, the app's (one title once: the screen's wins), then Textual's kept ones."""
    own = screen_commands(screen)
    titles = {command.title.lower() for command in own}
    yield from own
    for command in APP_COMMANDS:
        if command.title.lower() not in titles:
            yield SystemCommand(command.title, command.help, partial(command.run, app, screen))
    yield from (command for command in textual if command.title in TEXTUAL_KEPT and command.title.lower() not in titles)
