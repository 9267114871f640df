"""`?`: every key of the screen it was opened on (what that screen, its focused widget and the app bind)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

SECTIONS = ("this screen", "everywhere", "moving around")
PALETTE = ("ctrl+p", "command palette: every command, and the theme (type 'theme')")


def key_section(screen: Screen, node, binding: Binding, own: set[str]) -> int:
    """0: the screen's own keys (and what its focused list shows in the footer, such as Enter to open);
    1: the app's, bound everywhere (quit, help, the palette); 2: moving around (cursor, scroll, focus)."""
    if binding.action.removeprefix("app.") in APP_ACTIONS or node is screen.app:
        return 1
    if node is screen and binding.action in own:
        return 0
    return 0 if node is not screen and binding.show else 2


APP_ACTIONS = ("quit", "help", "command_palette")


def sectioned_rows(screen: Screen) -> list[tuple[int, str, str]]:
    """(section, keys, what they do) for each action bound on `screen` now, each once, in section order
    (see key_section), keys of one action together."""
    app = screen.app
    own = {binding.action for binding in type(screen).BINDINGS if isinstance(binding, Binding)}
    rows: dict[str, tuple[int, list[str], str]] = {}  # by action
    for active in screen.active_bindings.values():
        binding = active.binding
        action = binding.action.removeprefix("app.")
        if action in ("command_palette", "help_quit"):  # the palette is its own row; ctrl+c says how to quit
            continue
        what = binding.description or action.replace("_", " ").split("(")[0].split(".")[-1]
        section, keys, _ = rows.setdefault(action, (key_section(screen, active.node, binding, own), [], what))
        key = app.get_key_display(binding)
        if key not in keys:
            keys.append(key)
    ordered = sorted(rows.values(), key=lambda row: row[0])  # stable: bound order within a section
    return [(section, ", ".join(keys), what) for section, keys, what in ordered]


def key_rows(screen: Screen) -> list[tuple[str, str]]:
    """(keys, what they do): the screen's own keys first, then the app's, then navigation."""
    return [(keys, what) for _, keys, what in sectioned_rows(screen)]


def key_sections(screen: Screen) -> list[tuple[str, list[tuple[str, str]]]]:
    """The rows under their section titles; the palette with the app's keys."""
    sections: list[list[tuple[str, str]]] = [[], [], []]
    for section, keys, what in sectioned_rows(screen):
        sections[section].append((keys, what))
    sections[1].append(PALETTE)
    return [(title, rows) for title, rows in zip(SECTIONS, sections) if rows]


def help_table(screen: Screen) -> Table:
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for index, (title, rows) in enumerate(key_sections(screen)):
        if index:
            table.add_row("", "")
        table.add_row(Text(title, style="italic dim"), "")
        for keys, what in rows:
            table.add_row(keys, what)
    return table


class HelpScreen(ModalScreen[None]):
    """The keys of the screen below, in a box; Esc or ? closes it (q quits, as everywhere)."""

    BINDINGS = [Binding("escape,question_mark", "dismiss", "Close")]

    def __init__(self, shown_for: Screen) -> None:
        super().__init__()
        self.shown_for = shown_for

    def compose(self) -> ComposeResult:
        name = type(self.shown_for).__name__.removesuffix("Screen").lower()
        with VerticalScroll(classes="dialog help"):
            yield Static(Text(f"Keys on {name}", style="bold"), classes="question")
            yield Static(help_table(self.shown_for), id="help-keys")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so
