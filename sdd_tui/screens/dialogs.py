"""Small modal dialogs: yes/no, and what to do with a training run when quitting; the harmless
button has the focus, so Enter never deletes or stops anything."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from sdd_tui.core.format import printable


class ConfirmScreen(ModalScreen[bool]):
    """A question answered with y or n; dismisses with True for yes. No has the focus: Enter says no."""

    AUTO_FOCUS = "#no"
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(printable(self.question)), classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class QuitScreen(ModalScreen[str]):
    """A run is training: stop it, detach it to the background, or cancel quitting. Cancel has the
    focus: Enter never stops the run."""

    AUTO_FOCUS = "#cancel"
    BINDINGS = [
        Binding("s", "choose('stop')", "Stop run & quit"),
        Binding("d", "choose('detach')", "Detach & quit"),
        Binding("escape,c", "choose('cancel')", "Cancel"),
    ]

    def __init__(self, run_name: str) -> None:
        super().__init__()
        self.run_name = run_name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"{printable(self.run_name)} is still training. Quit how?\n"
                              "stop: end it now, keeping finished rounds\n"
                              "detach: it goes on in the background (sdd-tui watch)"), classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Stop (s)", id="stop", variant="error")
                yield Button("Detach (d)", id="detach", variant="primary")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class HandOverScreen(ModalScreen[None]):
    """Shown while a detach waits for the run to stop and the background process to start; the app
    closes then and prints where the run goes on."""

    def __init__(self, run_name: str) -> None:
        super().__init__()
        self.run_name = run_name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"Handing {printable(self.run_name)} over to a background process...\n"
                              "it stops at its next batch (at its first epoch end if none has ended yet: the "
                              "checkpoint to go on from), then `sdd-tui resume` takes over; the app closes then "
                              "and says how to follow it."),
                         classes="question")
