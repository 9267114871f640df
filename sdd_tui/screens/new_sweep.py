"""New sweep: preset, seeds, grid, --set overrides and Pack; Ctrl+S starts `sdd-tui sweep` in the background.

The form checks its values with the CLI's own parsers (core.sweeps.sweep: parse_seeds, parse_grid, expand_sweep,
which validates every member's config), shows a bad value as one red line under its field, and starts
exactly the command a shell would run, as a detached process (core.runs.spawn) that outlives the app. The
app trains nothing of the sweep itself.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static

from sdd_tui.core.config import preset_names
from sdd_tui.core.errors import SddError
from sdd_tui.core.format import printable
from sdd_tui.core.paths import new_run_id, sweep_log
from sdd_tui.core.runs.spawn import sdd_tui_command
from sdd_tui.core.sweeps.sweep import expand_sweep, parse_grid, parse_seeds

# (field, label, placeholder, help)
TEXT_FIELDS = [
    ("seeds", "seeds", "0-4 or 0,1,2", "every grid point with each seed: 0-4 or 0,1,2 (empty: the preset's seed)"),
    ("grid", "grid", "noise.rate=0.2,0.4; retrain.mode=rewind,finetune",
     "section.field=v1,v2, several separated by ; (optional): every combination is a member"),
    ("set", "--set", "prune.rounds=5 train.epochs=10", "section.field=value for every member, space separated"),
]
HELP = {name: text for name, _, _, text in TEXT_FIELDS}
DEFAULT_SEEDS = "0-2"


@dataclass
class SweepLaunch:
    """A `sdd-tui sweep` process started from this app: its command, log and process."""

    command: list[str]
    log: Path
    process: subprocess.Popen
    reported: bool = False  # its failure has been said


@dataclass
class SweepRequest:
    """What the form asks for, checked: the `sdd-tui sweep` options and the members they make."""

    preset: str
    seeds: str
    grid: list[str]
    overrides: list[str]
    pack: bool
    members: list[dict[str, Any]] = field(default_factory=list)

    def arguments(self) -> list[str]:
        """`sweep --preset P [--seeds S] [--grid G ...] [--set O ...] [--pack]`, as typed in a shell."""
        args = ["sweep", "--preset", self.preset]
        args += ["--seeds", self.seeds] if self.seeds else []
        for grid in self.grid:
            args += ["--grid", grid]
        for override in self.overrides:
            args += ["--set", override]
        return args + (["--pack"] if self.pack else [])


def launch_sweep(app, arguments: list[str]) -> SweepLaunch | None:
    """Start `sdd-tui ARGUMENTS --home HOME` in the background with the app's spawn, its log under
    <home>/sweeps/; None (and an error notification) when it cannot start."""
    command = sdd_tui_command(*arguments, "--home", str(app.store.home))
    log = sweep_log(app.store.home, new_run_id())
    try:
        process = app.spawn_with(command, log)
    except OSError as error:  # no room for the log, no such interpreter any more
        app.notify(f"could not start the sweep: {error}", severity="error", timeout=15)
        return None
    launch = SweepLaunch(command, log, process)
    app.sweep_launches.append(launch)
    return launch


def pack_label(on: bool) -> str:
    return f"Pack (--pack): {'on' if on else 'off'}"


def grid_parts(text: str) -> list[str]:
    """`noise.rate=0.2,0.4; retrain.mode=rewind` -> one `--grid` value per part."""
    return [part.strip() for part in text.split(";") if part.strip()]


def check_request(preset: str, seeds: str, grid: str, overrides: str, pack: bool
                  ) -> tuple[SweepRequest | None, dict[str, str]]:
    """The request, every member validated as `sdd-tui sweep` validates it; or one error per field, every
    field checked (a bad seeds value does not hide a bad grid: the members are made without what is bad)."""
    errors: dict[str, str] = {}
    seed_list = grid_values = None
    override_list: list[str] = []
    if seeds.strip():
        try:
            seed_list = parse_seeds(seeds.strip())
        except SddError as error:
            errors["seeds"] = str(error)
    try:
        grid_values = parse_grid(grid_parts(grid))
    except SddError as error:
        errors["grid"] = str(error)
    try:
        override_list = shlex.split(overrides)
    except ValueError as error:  # an unclosed quote
        errors["set"] = f"--set {overrides!r}: {error}; close the quote"
    members, problem = members_or_error(preset, override_list, seed_list, grid_values or {})
    if problem:
        errors.setdefault(problem[0], problem[1])
        if problem[0] == "set" and grid_values:  # the grid checked without the bad overrides
            _, grid_problem = members_or_error(preset, [], seed_list, grid_values)
            if grid_problem and grid_problem[0] == "grid":
                errors.setdefault("grid", grid_problem[1])
    if errors:
        return None, errors
    return SweepRequest(preset, seeds.strip(), grid_parts(grid), override_list, pack, members), {}


def members_or_error(preset: str, overrides: list[str], seeds: list[int] | None, grid: dict[str, list[str]]
                     ) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """The sweep's validated members, or (the field to blame, the message)."""
    try:
        return expand_sweep(preset, None, overrides, seeds, grid), None
    except SddError as error:
        message = str(error)  # a grid value names its grid point first; anything else is an override's
        return [], ("grid" if message.startswith(("--grid", "the sweep would have")) and grid else "set", message)


def sweep_errors_line(errors: dict[str, str]) -> str:
    """One line naming every field to fix, in the form's order."""
    names = [label for name, label, _, _ in TEXT_FIELDS if name in errors]
    return f"fix {len(names)} field{'s' * (len(names) != 1)}: {', '.join(names)}"


class NewSweepScreen(Screen):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow-form"), (80, "-wide-form")]  # narrow: help under each field
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("ctrl+d", "dry_run", "Dry run", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, preset: str | None = None) -> None:
        super().__init__()
        names = preset_names()
        self.preset = preset if preset in names else names[0]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="form"):
            yield Static("New sweep: every grid combination x every seed is a run. Tab moves between fields, "
                         "Ctrl+D lists the members, Ctrl+S starts it in the background.", classes="section")
            with Horizontal(classes="field"):
                yield Label("preset", classes="field-label")
                yield Select([(name, name) for name in preset_names()], value=self.preset, allow_blank=False,
                             id="input-preset", compact=True)
                yield Static("what every member starts from (sdd-tui presets show NAME)", classes="field-help")
            for name, label, placeholder, help_text in TEXT_FIELDS:
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield Input(DEFAULT_SEEDS if name == "seeds" else "", placeholder=placeholder,
                                id=f"input-{name}", compact=True)
                    yield Static(help_text, id=f"help-{name}", classes="field-help")
            with Horizontal(classes="field"):
                yield Label("", classes="field-label")
                yield Checkbox(pack_label(False), id="input-pack", compact=True)
                yield Static("MLP-family members that share network, data and schedule train as one cohort "
                             "per process", classes="field-help")
            yield Static(id="preview", classes="field-help")
            with Horizontal(classes="field buttons"):
                yield Button("Start (Ctrl+S)", id="start", variant="success")
                yield Button("Dry run (Ctrl+D)", id="dry-run")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.checkbox.label = pack_label(event.value)  # its state in words: the box looks alike on and off

    def on_mount(self) -> None:
        self.sub_title = "new sweep"
        for widget in self.query(Input):
            widget.cursor_blink = self.app.blink
        self.query_one("#input-seeds", Input).focus()

    def request(self) -> tuple[SweepRequest | None, dict[str, str]]:
        """The form's values checked; each field's help line shows its error in red, or its help again."""
        text = {name: self.query_one(f"#input-{name}", Input).value for name in HELP}
        request, errors = check_request(str(self.query_one("#input-preset", Select).value), text["seeds"],
                                        text["grid"], text["set"], self.query_one("#input-pack", Checkbox).value)
        for name in HELP:
            help_widget = self.query_one(f"#help-{name}", Static)
            help_widget.set_class(name in errors, "error")
            help_widget.update(Text(printable(errors.get(name, HELP[name]))))  # the error quotes what was typed
        if errors:
            self.query_one("#preview", Static).update("")
            first = next(name for name in HELP if name in errors)
            self.query_one(f"#input-{first}", Input).focus()
            self.query_one(f"#help-{first}", Static).scroll_visible(animate=False)
            self.notify(sweep_errors_line(errors), severity="error", timeout=10)
        return request, errors

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        elif event.button.id == "dry-run":
            self.action_dry_run()

    def action_start(self) -> None:
        request, _ = self.request()
        if request is None:
            return
        launch = launch_sweep(self.app, request.arguments())
        if launch is None:
            return
        self.app.pop_screen()
        self.app.notify(f"sweep of {len(request.members)} member(s) started in process {launch.process.pid} "
                        f"(log {launch.log}); it is listed once it has stored its members", timeout=10)

    def action_dry_run(self) -> None:
        """The members the sweep would have and, with Pack, how they pack (as `sdd-tui sweep --dry-run`)."""
        request, _ = self.request()
        if request is None:
            return
        names = ", ".join(member["name"] for member in request.members[:3])
        more = f" and {len(request.members) - 3} more" if len(request.members) > 3 else ""
        first = f"{len(request.members)} member(s): {names}{more}"
        self._show_preview([first])
        if request.pack:
            self.pack_plan(request, first)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def pack_plan(self, request: SweepRequest, first: str) -> None:
        """The cohorts `--pack` would make, as `sdd-tui sweep --dry-run --pack` prints them (it imports torch:
        a thread, not the UI's)."""
        from sdd_tui.core.engine.cohort_plan import DEFAULT_PACK_SIZE
        from sdd_tui.core.sweeps.sweep_runner import pack_plan_lines

        lines = [first, *pack_plan_lines(request.members, None, DEFAULT_PACK_SIZE)]
        self.app.call_from_thread(self._show_preview, lines)

    def _show_preview(self, lines: list[str]) -> None:
        if self.is_mounted:
            self.query_one("#preview", Static).update(Text("\n".join(printable(line) for line in lines)))

    def action_back(self) -> None:
        self.app.pop_screen()

