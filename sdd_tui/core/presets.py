"""The bundled presets as raw TOML: names, descriptions and contents, without validating them.

Kept apart from core.config (pydantic) so that `sdd-tui presets` starts fast; `core.config.load_preset`
validates.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from .errors import SddError


def preset_names() -> list[str]:
    files = resources.files("sdd_tui.presets")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SddError(f"{source}: malformed TOML ({error}); fix the file and try again") from None
    except RecursionError:
        raise SddError(f"{source}: TOML nested too deeply to be a config; fix the file and try again") from None


def preset_raw(name: str) -> dict[str, Any]:
    """The raw TOML of a bundled preset, or SddError listing the presets."""
    if name not in preset_names():
        raise SddError(f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}")
    text = resources.files("sdd_tui.presets").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return read_toml(text, f"preset {name}")


def preset_descriptions() -> dict[str, str]:
    """Each preset's one-line `description`, by name."""
    return {name: str(preset_raw(name).get("description", "")) for name in preset_names()}
