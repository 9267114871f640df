"""Validated experiment configuration: pydantic models, presets, TOML files and `--set` overrides.

Every field has a description, a default and bounds, so a bad value becomes a one-line
`SddError` that names the field and what is allowed.
"""

from __future__ import annotations

import json
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .errors import SddError
from .paths import is_valid_id
from .plugins import check_spec, is_plugin
from .presets import preset_names, preset_raw, read_toml  # noqa: F401 (preset_names: re-exported)
from .ranges import trained_rounds
from .registry import DATASETS, MODELS, SCORES, Registry, choices
from .retrain import RETRAIN_MODES

# The names of datasets, models, pruning scores and retrain modes are the registries' (core/registry.py,
# core.retrain.RETRAIN_MODES); `data.name` and `model.name` also take a plugin, `module.path:function`.
NoiseKind = Literal["none", "symmetric", "random", "asymmetric", "pairflip"]
PruneScope = Literal["global", "layer"]
PruneSchedule = Literal["iterative", "oneshot"]


MAX_SEED = 2**32 - 1  # NumPy's limit; seeds derived from it (x 7919, + round) stay far inside torch's int64
STEPS = re.compile(r"^(\d+)(ep|it)$")  # "5ep" (epochs) or "980it" (iterations), the official code's syntax
DataOrder = Literal["per_round", "same"]


def is_device_name(device: str) -> bool:
    """auto, cpu, cuda, cuda:N or mps: what --device and runtime.device take."""
    return device in ("auto", "cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isdigit())


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _registered(name: str, names: Any) -> str:
    """A name of the registry (or table) `names`; else a ValueError listing them."""
    if name not in names:
        raise ValueError(f"unknown name {name!r}; use one of {', '.join(names)}")
    return name


def _builtin_or_plugin(name: str, builtins: Registry, field: str) -> str:
    """A registered name, or a well-formed `module.path:function`; else a ValueError listing both."""
    if is_plugin(name):
        return check_spec(name, field)
    if name not in builtins:
        raise ValueError(f"unknown name {name!r}; use one of {', '.join(builtins)}, "
                         f"or module.path:function for your own")
    return name


class _PluginSection(_Section):
    """A section whose `name` is a built-in one or a plugin: then any extra keys are kept and handed to it."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    BUILTINS: ClassVar[Registry]  # the registered names
    SECTION: ClassVar[str]

    @field_validator("name", check_fields=False)  # each subclass declares `name`
    @classmethod
    def _name_ok(cls, name: str) -> str:
        return _builtin_or_plugin(name, cls.BUILTINS, f"{cls.SECTION}.name")

    @model_validator(mode="after")
    def _extras_only_for_plugins(self):
        if self.model_extra and not is_plugin(self.name):
            raise PydanticCustomError("unknown_field", "unknown field; allowed: {allowed}",
                                      {"field": next(iter(self.model_extra)),
                                       "allowed": ", ".join(type(self).model_fields)})
        return self


class DataConfig(_PluginSection):
    BUILTINS, SECTION = DATASETS, "data"
    name: str = Field("digits", description=f"Dataset: {choices(DATASETS)} | module.path:function (your own)")
    data_dir: Path | None = Field(
        None, description="Where torchvision datasets (and tiny-imagenet-200/) live (default: <home>/data)"
    )
    download: bool = Field(False, description="Download torchvision datasets if missing")
    train_size: int | None = Field(
        None, ge=10, description="Use only the first N training samples (after a seeded shuffle)"
    )
    test_size: int | None = Field(None, ge=10, description="Use only the first N test samples")
    normalize: bool = Field(
        True, description="Your own dataset: standardise inputs per channel (images) or feature (vectors)"
    )
    num_classes: int = Field(10, ge=2, le=1000, description="Classes of the synthetic data")
    shape: list[int] = Field(
        default_factory=lambda: [1, 8, 8],
        description="Sample shape of the synthetic data, e.g. [64] or [3, 32, 32]",
    )
    synthetic_train: int = Field(512, ge=10, le=10_000_000, description="Synthetic training samples")
    synthetic_test: int = Field(256, ge=10, le=10_000_000, description="Synthetic test samples")

    @field_validator("shape")
    @classmethod
    def _shape_ok(cls, shape: list[int]) -> list[int]:
        if len(shape) not in (1, 3) or any(s < 1 for s in shape):
            raise ValueError("shape must be [features] or [channels, height, width], all >= 1")
        return shape


class NoiseConfig(_Section):
    kind: NoiseKind = Field(
        "symmetric", description="Label noise: none | symmetric (always another class) | random (a class drawn "
                                 "from all, as the official code's --random_labels_fraction) | asymmetric | pairflip")
    rate: float = Field(0.2, ge=0.0, le=1.0, description="Fraction of training labels corrupted (random: relabelled)")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Noise seed (default: runtime.seed)")


class ModelConfig(_PluginSection):
    BUILTINS, SECTION = MODELS, "model"
    name: str = Field("lenet300_100", description=f"Network: {choices(MODELS)} | module.path:function (your own)")
    width: float = Field(1.0, gt=0.0, le=16.0, description="Width multiplier (tests shrink models with it)")
    hidden: list[int] = Field(
        default_factory=lambda: [300, 100], description="Hidden layer widths of the mlp"
    )

    @field_validator("hidden")
    @classmethod
    def _hidden_ok(cls, hidden: list[int]) -> list[int]:
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError("hidden must list at least one width, each >= 1")
        return hidden


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1, le=10_000, description="Epochs per round (T)")
    batch_size: int = Field(128, ge=1, le=65_536, description="Training batch size")
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="Optimizer: sgd | adam")
    lr: float = Field(0.1, gt=0.0, le=10.0, description="Initial learning rate")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 weight decay")
    milestones: list[int] = Field(
        default_factory=list, description="Epochs at which the LR is multiplied by gamma"
    )
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="LR drop factor at each milestone")
    augment: bool = Field(False, description="Random 4-px shift and horizontal flip (image data; Tiny ImageNet: "
                                             "random resized crop to 32 and flip)")
    eval_batch_size: int = Field(1024, ge=1, le=1_000_000, description="Batch size for evaluation")
    warmup: int | str = Field(
        0, description="Linear LR warm-up from 0 over N iterations (980), or epochs ('5ep'), as the official "
                       "warmup_steps: the LR of iteration i is multiplied by min(1, i / N); 0: none")
    data_order: DataOrder = Field(
        "per_round", description="per_round (a new data order in every round and branch) | same (epoch e sees "
                                 "the same order in every round and branch, as the official data_order_seed)")

    @field_validator("warmup", mode="before")  # before: a float or a bool gets this message, not the union's
    @classmethod
    def _warmup_ok(cls, warmup: Any) -> int | str:
        if isinstance(warmup, int) and not isinstance(warmup, bool) and warmup >= 0:
            return warmup
        if isinstance(warmup, str) and STEPS.match(warmup.strip()):
            return warmup.strip()
        raise ValueError("warmup must be iterations >= 0 (e.g. 980), or a string such as '5ep' (epochs) or '980it'")

    def warmup_iterations(self, iterations_per_epoch: int) -> int:
        """The warm-up's length in iterations (epochs counted with this run's iterations per epoch)."""
        if isinstance(self.warmup, int):
            return self.warmup
        count, unit = STEPS.match(self.warmup).groups()
        return int(count) * (iterations_per_epoch if unit == "ep" else 1)

    @field_validator("milestones")
    @classmethod
    def _milestones_ok(cls, milestones: list[int]) -> list[int]:
        if any(m < 1 for m in milestones) or milestones != sorted(milestones):
            raise ValueError("milestones must be increasing epochs >= 1")
        return milestones


class PruneConfig(_Section):
    method: str = Field("magnitude", description=f"Score: {choices(SCORES)}")
    scope: PruneScope = Field("global", description="global (one threshold) | layer (each tensor alike)")
    fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Fraction of remaining weights removed per round")
    rounds: int = Field(30, ge=0, le=200, description="Pruning rounds after the dense round")
    layers: Literal["default", "all", "linear", "conv"] = Field(
        "default", description="Prunable weights: default (the paper's set) | all | linear | conv"
    )
    schedule: PruneSchedule = Field(
        "iterative", description="iterative (round r prunes round r-1's network by `fraction`) | oneshot (round r "
                                 "prunes the trained dense network straight to sparsity 1 - (1 - fraction)^r)")
    levels: list[int] | None = Field(
        None, description="oneshot: train only these rounds, e.g. [5, 6] ([]: the dense round only; "
                          "default: every round 1..rounds)")
    dense_from: str | None = Field(
        None, description="Reuse this run's dense round (its trained weights, init, rewind point and noisy labels) "
                          "instead of training one; its settings must match")

    @field_validator("method")
    @classmethod
    def _method_ok(cls, method: str) -> str:
        return _registered(method, SCORES)

    @field_validator("levels")
    @classmethod
    def _levels_ok(cls, levels: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if levels is None:
            return levels
        if any(level < 1 for level in levels) or levels != sorted(set(levels)):
            raise ValueError("levels must be increasing rounds >= 1, each once, e.g. [1, 2, 3]")
        if info.data.get("schedule") != "oneshot":
            raise ValueError("levels are for prune.schedule=oneshot (iterative rounds build on each other); "
                             "add --set prune.schedule=oneshot")
        rounds = info.data.get("rounds")
        if levels and rounds is not None and levels[-1] > rounds:
            raise ValueError(f"levels go past prune.rounds={rounds}; raise prune.rounds or drop the level")
        return levels

    @field_validator("dense_from")
    @classmethod
    def _dense_from_ok(cls, run_id: str | None, info: ValidationInfo) -> str | None:
        if run_id is not None and not is_valid_id(run_id):
            raise ValueError("dense_from must be a run id (`sdd-tui runs` lists them)")
        if run_id is not None and info.data.get("levels") == []:
            raise ValueError("with prune.levels=[] there is nothing to train but the dense round it reuses; "
                             "give levels, e.g. --set prune.levels=[5]")
        return run_id

    def trained_rounds(self) -> list[int]:
        """The rounds a run with these settings trains, in order (0: the dense round)."""
        return trained_rounds(self.rounds, self.levels, self.dense_from is not None)


class RetrainConfig(_Section):
    mode: str = Field("rewind", description=" | ".join(RETRAIN_MODES))
    rewind_iteration: int = Field(0, ge=0, description="Iteration t to rewind weights / LR to (0 = init)")
    finetune_lr: float = Field(0.001, gt=0.0, le=10.0, description="Fixed LR of finetune mode")
    compare_reinit: bool = Field(
        False, description="Also train a random-reinit branch with the same mask each round"
    )

    @field_validator("mode")
    @classmethod
    def _mode_ok(cls, mode: str) -> str:
        return _registered(mode, RETRAIN_MODES)


class AnalysisConfig(_Section):
    learning_distance: bool = Field(True, description="Record ||w - w_init|| every round")


class RuntimeConfig(_Section):
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of init, noise, data order and masks")
    seed_scheme: int = Field(
        2, ge=1, le=2, description="How the random streams derive from the seed: 2 (one seed tree; no two streams "
                                   "coincide) | 1 (runs started before the seed tree; kept so they resume alike)")
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads for torch")
    fast: bool = Field(True, description="Fast path: device-resident data, AMP on CUDA")
    amp: bool = Field(True, description="Mixed precision on CUDA in the fast path (bf16 autocast, fp16 with loss "
                                        "scaling where bf16 is missing); false trains in fp32 as the paper's code")
    compile: bool = Field(False, description="torch.compile the model once per run")
    checkpoint_every: int = Field(0, ge=0, description="Also checkpoint every N epochs (0: rounds only)")
    checkpoint_minutes: float = Field(
        5.0, ge=0.0, le=1440.0, description="Also checkpoint at the first epoch end N minutes after the last (0: off)"
    )

    @field_validator("device")
    @classmethod
    def _device_ok(cls, device: str) -> str:
        if not is_device_name(device):
            raise ValueError("device must be auto, cpu, cuda or cuda:N")
        return device

    @property
    def mixed_precision(self) -> bool:
        """Whether training and evaluation may autocast (on CUDA): the fast path with `amp` on."""
        return self.fast and self.amp


class ExperimentConfig(_Section):
    name: str = Field("experiment", min_length=1, max_length=80, description="Short name of the run")
    description: str = Field("", description="One line shown in preset lists")
    data: DataConfig = Field(default_factory=DataConfig)
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "ExperimentConfig":
        # a plugin's samples are known only once loaded: core.engine.models checks those
        image_only = self.model.name in MODELS and MODELS.entry(self.model.name).image_only
        if image_only and self.data.name in DATASETS and DATASETS.entry(self.data.name).image is False:
            images = [name for name in DATASETS if DATASETS.entry(name).image is not False]
            raise ValueError(f"model.name: {', '.join(MODELS.names(image_only=True))} need image data "
                             f"({', '.join(images)})")
        return self


# ---------------------------------------------------------------------------- errors


def _format_validation_error(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "config"
    message = first["msg"]
    if first["type"] == "unknown_field":  # an extra key in a section whose name is not a plugin
        field = f"{field}.{first['ctx']['field']}"
        message = first["msg"]
    elif first["type"] == "extra_forbidden":
        section = ".".join(str(part) for part in first["loc"][:-1])
        allowed = _field_names(section)
        message = f"unknown field; allowed: {', '.join(allowed)}"
    elif "input" in first and first["type"] not in ("missing",) and first["loc"]:  # not the whole config
        message = f"{message} (got {first['input']!r})"
    more = len(error.errors()) - 1
    suffix = f" (+{more} more)" if more else ""
    return f"{source}: {field}: {message}{suffix}"


def _field_names(section: str) -> list[str]:
    model: type[BaseModel] = ExperimentConfig
    for part in [p for p in section.split(".") if p]:
        if part not in model.model_fields:
            return []
        annotation = model.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return list(model.model_fields)


def stored_config(raw: dict[str, Any]) -> dict[str, Any]:
    """A stored run's config as it was started: one saved before `runtime.seed_scheme` existed drew its
    random streams with scheme 1, so resuming, branching or analysing it must too."""
    runtime = raw.get("runtime")
    if not isinstance(runtime, dict) or "seed_scheme" in runtime:
        return raw
    return {**raw, "runtime": {**runtime, "seed_scheme": 1}}


def validate_config(raw: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Build an ExperimentConfig from plain data, or raise SddError naming the bad field."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise SddError(_format_validation_error(error, source)) from None


# ---------------------------------------------------------------------------- presets


CONFIG_MAX_BYTES = 1 << 20  # a config is a few hundred bytes of TOML; anything near this is the wrong file


def config_file_raw(path: Path) -> dict[str, Any]:
    """The raw TOML of a --config file: a regular UTF-8 file of at most 1 MiB, or one SddError."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block, /dev/zero never ends, a folder is a mistake
            raise SddError(f"config file {path} is not a regular file; give the path of a .toml file to --config")
        if info.st_size > CONFIG_MAX_BYTES:
            raise SddError(f"config file {path} has {info.st_size:,} bytes, more than a config's "
                           f"{CONFIG_MAX_BYTES:,}; give the path of a .toml file to --config")
        with path.open("rb") as handle:
            data = handle.read(CONFIG_MAX_BYTES + 1)
    except FileNotFoundError:
        raise SddError(f"config file {path} not found; check the path given to --config") from None
    except OSError as error:
        raise SddError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SddError(f"config file {path} is not UTF-8 text (byte {error.start}); "
                       "give the path of a .toml file to --config") from None
    return read_toml(text, str(path))


def load_preset(name: str) -> ExperimentConfig:
    return validate_config(preset_raw(name), f"preset {name}")


# ---------------------------------------------------------------------------- overrides


def override(key: str, value: str) -> str:
    """`--set` text that sets `key` to the string `value` as given: quotes, brackets and emoji included."""
    return f"{key}={json.dumps(value, ensure_ascii=False)}"  # a JSON string without \\uD83D escapes is TOML


def parse_override(text: str) -> tuple[list[str], Any]:
    """`section.field=value` -> (["section", "field"], value); the value is read as TOML."""
    if "=" not in text:
        raise SddError(f"--set {text!r}: expected section.field=value, e.g. --set train.epochs=5")
    key, _, value_text = text.partition("=")
    path = [part.strip() for part in key.strip().split(".")]
    if not all(path):
        raise SddError(f"--set {text!r}: expected section.field=value, e.g. --set train.epochs=5")
    try:
        value = tomllib.loads(f"v = {value_text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()  # a bare word such as cifar10 is a string
    return path, value


def _plugin_extra(raw: dict[str, Any], path: list[str]) -> bool:
    """Whether `path` is a key of its own in a section whose name (so far) is a plugin."""
    section = raw.get(path[0]) if len(path) == 2 else None
    return isinstance(section, dict) and is_plugin(str(section.get("name", "")))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `--set` overrides to raw config data; unknown sections or fields are SddErrors."""
    result = {key: (dict(value) if isinstance(value, dict) else value) for key, value in raw.items()}
    for text in overrides:
        path, value = parse_override(text)
        section_path = ".".join(path[:-1])
        if section_path and section_path.split(".")[0] not in _field_names(""):
            raise SddError(f"--set {text!r}: unknown section {path[0]!r}; "
                           f"sections: {', '.join(_field_names(''))}")
        allowed = _field_names(section_path)
        if path[-1] not in allowed and not _plugin_extra(result, path):
            where = f"section {section_path!r}" if section_path else "the top level"
            hint = ", ".join(allowed)
            raise SddError(f"--set {text!r}: unknown field {path[-1]!r} in {where}; allowed: {hint}")
        target = result
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return result


def resolve_config(
    preset: str | None = None,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
) -> ExperimentConfig:
    """A preset or a config file (or the defaults), with overrides applied and validated."""
    if preset and config_file:
        raise SddError("give either --preset or --config, not both")
    if preset:
        raw, source = preset_raw(preset), f"preset {preset}"
    elif config_file:
        raw, source = config_file_raw(config_file), str(config_file)
    else:
        raw, source = {}, "config"
    if overrides:
        raw = apply_overrides(raw, overrides)
        source = f"{source} with --set"
    return validate_config(raw, source)


def config_to_toml(config: ExperimentConfig) -> str:
    """A readable TOML rendering (for `presets show` and saved runs)."""
    data = config.model_dump(mode="json", exclude_none=True)
    lines: list[str] = []
    for key in ("name", "description"):
        lines.append(f"{key} = {_toml_value(data.pop(key))}")
    for section, fields in data.items():
        lines.append("")
        lines.append(f"[{section}]")
        for key, value in fields.items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def most_rounds() -> int:
    """The most pruning rounds a run can have: prune.rounds' upper bound."""
    bounds = PruneConfig.model_fields["rounds"].metadata
    return next(rule.le for rule in bounds if getattr(rule, "le", None) is not None)
