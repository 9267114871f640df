"""New experiment: a form seeded from a preset, validated by core.config's own model, inline errors."""

from __future__ import annotations

import copy
import shlex
from typing import Any, get_args

from pydantic import ValidationError
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from sdd_tui.core.config import ExperimentConfig, NoiseKind, PruneSchedule, PruneScope, apply_overrides, preset_raw
from sdd_tui.core.errors import SddError
from sdd_tui.core.registry import DATASETS, MODELS, SCORES
from sdd_tui.core.retrain import RETRAIN_MODES
from sdd_tui.live import warm_up_engine

EXTRA = "extra"  # the free `section.field=value ...` overrides field
GENERAL = "general"  # errors that belong to no single field

# (config path, label, choices for a Select (a Literal, or a registry read when the form is built) or the Input type)
FORM_FIELDS: list[tuple[str, str, Any]] = [
    ("name", "name", "text"),
    ("data.name", "dataset", DATASETS),
    ("noise.kind", "noise", NoiseKind),
    ("noise.rate", "noise rate", "number"),
    ("model.name", "model", MODELS),
    ("prune.method", "pruning", SCORES),
    ("prune.scope", "scope", PruneScope),
    ("prune.schedule", "schedule", PruneSchedule),
    ("prune.fraction", "prune fraction", "number"),
    ("retrain.mode", "retrain", RETRAIN_MODES),
    ("prune.rounds", "rounds", "integer"),
    ("train.epochs", "epochs", "integer"),
    ("train.batch_size", "batch size", "integer"),
    ("train.lr", "lr", "number"),
    ("runtime.device", "device", "text"),
    ("runtime.seed", "seed", "integer"),
]


def field_id(path: str) -> str:
    return path.replace(".", "-")


def get_path(raw: dict[str, Any], path: str) -> Any:
    value: Any = raw
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    *sections, last = path.split(".")
    for part in sections:
        raw = raw.setdefault(part, {})
    raw[last] = value


def field_description(path: str) -> str:
    model: Any = ExperimentConfig
    *sections, last = path.split(".")
    for part in sections:
        model = model.model_fields[part].annotation
    return model.model_fields[last].description or ""


def form_defaults(preset: str) -> dict[str, Any]:
    """The form's starting values: the preset's, else the config defaults."""
    raw = preset_raw(preset)
    defaults = ExperimentConfig.model_validate(raw).model_dump(mode="json")
    return {path: get_path(defaults, path) for path, _, _ in FORM_FIELDS}


def build_config(preset: str, values: dict[str, Any], extra: str) -> tuple[ExperimentConfig | None, dict[str, str]]:
    """The preset with the form's values and extra overrides, validated; or every error at once, per field
    (a bad override does not hide a bad field, nor a bad field a bad override)."""
    raw = copy.deepcopy(preset_raw(preset))
    for path, value in values.items():
        set_path(raw, path, value)
    raw, extra_errors = apply_each_override(raw, extra)
    try:
        config = ExperimentConfig.model_validate(raw)
        errors: dict[str, str] = {}
    except ValidationError as error:
        config, errors = None, validation_errors(error)
    if extra_errors:
        errors[EXTRA] = "; ".join([*extra_errors, *([errors[EXTRA]] if EXTRA in errors else [])])
    return (config if not errors else None), errors


def apply_each_override(raw: dict[str, Any], extra: str) -> tuple[dict[str, Any], list[str]]:
    """`raw` with each `section.field=value` of `extra` that applies; one message per one that does not."""
    try:
        overrides = shlex.split(extra)
    except ValueError as error:  # an unclosed quote
        return raw, [f"{error}; close the quote"]
    problems = []
    for override in overrides:
        try:
            raw = apply_overrides(raw, [override])
        except SddError as error:
            problems.append(str(error).replace("--set ", ""))
    return raw, problems


def errors_line(errors: dict[str, str]) -> str:
    """One line naming every field to fix, in the form's order: 'fix 2 fields: noise rate, more settings'."""
    labels = {path: label for path, label, _ in FORM_FIELDS} | {EXTRA: "more settings", GENERAL: "the settings"}
    names = [labels[key] for key in [*labels] if key in errors]
    return f"fix {len(names)} field{'s' * (len(names) != 1)}: {', '.join(names)}"


def validation_errors(error: ValidationError) -> dict[str, str]:
    """pydantic's errors keyed by form field (or EXTRA / GENERAL), first message per field."""
    paths = {path for path, _, _ in FORM_FIELDS}
    errors: dict[str, str] = {}
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if not path:  # a whole-config rule names its field at the start of the message
            path = next((p for p in paths if message.startswith(f"{p}:")), GENERAL)
            message = message.removeprefix(f"{path}:").strip()
        key = path if path in paths else EXTRA if path else GENERAL
        errors.setdefault(key, message if key != EXTRA else f"{path}: {message}")
    return errors


class NewExperimentScreen(Screen):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow-form"), (80, "-wide-form")]  # narrow: help under each field
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, preset: str) -> None:
        super().__init__()
        self.preset = preset
        self.defaults = form_defaults(preset)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="form"):
            yield Static(f"New experiment from preset [b]{self.preset}[/b]. Tab moves between fields, "
                         "Ctrl+S starts.", classes="section")
            for path, label, kind in FORM_FIELDS:
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield self._widget(path, kind)
                    yield Static(field_description(path), id=f"help-{field_id(path)}", classes="field-help")
            with Horizontal(classes="field"):
                yield Label("more settings", classes="field-label")
                yield Input(placeholder="model.width=0.5 ...", id=f"input-{EXTRA}", compact=True)
                yield Static("section.field=value, space separated", id=f"help-{EXTRA}", classes="field-help")
            yield Static(id=f"help-{GENERAL}", classes="field-help")
            yield Button("Start (Ctrl+S)", id="start", variant="success")
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; `?` says so

    def _widget(self, path: str, kind: Any):
        value = self.defaults[path]
        if isinstance(kind, str):
            return Input(str(value), type=kind, id=f"input-{field_id(path)}", compact=True)
        names = get_args(kind) or list(kind)  # a Literal's, or the registry's as it is now
        return Select([(choice, choice) for choice in names], value=value, allow_blank=False,
                      id=f"input-{field_id(path)}", compact=True)

    def on_mount(self) -> None:
        warm_up_engine()  # torch loads while the form is read, so Ctrl+S starts at once
        self.sub_title = f"new experiment ({self.preset})"
        for widget in self.query(Input):
            widget.cursor_blink = self.app.blink
        self.query_one(f"#input-{field_id('name')}", Input).focus()

    def form_values(self) -> dict[str, Any]:
        values = {}
        for path, _, _ in FORM_FIELDS:
            widget = self.query_one(f"#input-{field_id(path)}")
            values[path] = widget.value.strip() if isinstance(widget, Input) else widget.value
        return values

    def show_errors(self, errors: dict[str, str]) -> None:
        for path in [p for p, _, _ in FORM_FIELDS] + [EXTRA, GENERAL]:
            help_widget = self.query_one(f"#help-{field_id(path)}", Static)
            message = errors.get(path)
            help_widget.set_class(message is not None, "error")
            if path == GENERAL:
                help_widget.update(message or "")
            elif path == EXTRA:
                help_widget.update(message or "section.field=value, space separated")
            else:
                help_widget.update(message or field_description(path))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def action_start(self) -> None:
        extra = self.query_one(f"#input-{EXTRA}", Input).value
        config, errors = build_config(self.preset, self.form_values(), extra)
        self.show_errors(errors)
        if config is None:
            self.go_to_first_error(errors)
            return
        if self.app.live is None or not self.app.live.running:
            self.app.pop_screen()  # else the run starts in the background and the form stays under its dashboard
        self.app.start_run(config, self.preset)

    def go_to_first_error(self, errors: dict[str, str]) -> None:
        """Focus (and scroll to) the first field with an error; one line names them all."""
        first = next((path for path in [p for p, _, _ in FORM_FIELDS] + [EXTRA] if path in errors), None)
        if first is not None:
            widget = self.query_one(f"#input-{field_id(first)}")
            widget.focus()
            self.query_one(f"#help-{field_id(first)}").scroll_visible(animate=False)
        else:
            self.query_one(f"#help-{GENERAL}").scroll_visible(animate=False)
        self.notify(errors_line(errors), severity="error", timeout=10)

    def action_back(self) -> None:
        self.app.pop_screen()
