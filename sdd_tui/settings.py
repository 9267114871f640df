"""The app's settings that outlive it (the theme): a small JSON file in the platform's user config folder
(platformdirs), or in $SDD_TUI_CONFIG when set (the tests point it at a temporary folder)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CONFIG_ENV = "SDD_TUI_CONFIG"
SETTINGS_FILE = "settings.json"


def settings_path() -> Path:
    folder = os.environ.get(CONFIG_ENV)
    if not folder:
        from platformdirs import user_config_dir

        folder = user_config_dir("sdd-tui")
    return Path(folder) / SETTINGS_FILE


def load_settings() -> dict[str, Any]:
    """The saved settings; none when the file is missing or unreadable (the defaults then, as at first start)."""
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_setting(key: str, value: Any) -> str | None:
    """Keep `key = value` with the other settings (written whole, then renamed over the old file); the
    reason when it cannot be written (a read-only config folder), else None."""
    path = settings_path()
    settings = {**load_settings(), key: value}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        return f"cannot save the {key} in {path} ({error.strerror or error})"
    return None
