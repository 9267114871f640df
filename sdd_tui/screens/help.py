"""`?`: every key of the screen it was opened on (what that screen, its focused widget and the app bind)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static


def key_rows(screen: Screen) -> list[tuple[str, str]]:
    """(keys, what they do) for each action bound on `screen` now: the screen's own keys first, then
    the focused widget's, then the app's and Textual's general ones; keys of one action together."""
    app = screen.app
    own = {binding.action for binding in type(screen).BINDINGS if isinstance(binding, Binding)}
    rows: dict[tuple[int, str], tuple[list[str], str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        what = binding.description or binding.action.replace("_", " ").split("(")[0].split(".")[-1]
        order = 0 if active.node is screen and binding.action in own else (1 if active.node not in (screen, app) else 2)
        keys, _ = rows.setdefault((order, what), ([], what))
        key = app.get_key_display(binding)
        if key not in keys:
            keys.append(key)
    return [(", ".join(keys), what) for (_, _), (keys, what) in sorted(rows.items(), key=lambda item: item[0][0])]


def help_table(screen: Screen) -> Table:
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for keys, what in key_rows(screen):
        table.add_row(keys, what)
    table.add_row("ctrl+p", "command palette: every command, and the theme (type 'theme')")
    return table


class HelpScreen(ModalScreen[None]):
    """The keys of the screen below, in a box; any of Esc, ? or q closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, shown_for: Screen) -> None:
        super().__init__()
        self.shown_for = shown_for

    def compose(self) -> ComposeResult:
        name = type(self.shown_for).__name__.removesuffix("Screen").lower()
        with VerticalScroll(classes="dialog help"):
            yield Static(Text(f"Keys on {name}", style="bold"), classes="question")
            yield Static(help_table(self.shown_for), id="help-keys")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so
