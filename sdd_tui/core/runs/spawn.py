"""Start `python -m sdd_tui ...` as a background process: the one way the app and the sweep driver do it.

The child runs in its own session (a Ctrl-C in the terminal, a closed SSH link or the parent quitting
do not reach it), reads nothing from stdin, and appends its output to a log file. It runs with `-P`,
so an `sdd_tui/` folder in the working directory never replaces the installed package (a
plugin module there is still found: sdd_tui.core.plugins looks in the working directory itself); started
from a source checkout, the checkout is put on PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]  # sdd_tui/core/runs/spawn.py -> the checkout, if any


def sdd_tui_command(*args: str) -> list[str]:
    """`python -P -m sdd_tui ARGS` with this interpreter."""
    return [sys.executable, "-P", "-m", "sdd_tui", *args]


def child_env(defaults: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment (a source checkout first on PYTHONPATH), `defaults` where unset."""
    env = dict(os.environ)
    if (PROJECT_ROOT / "pyproject.toml").exists():  # a checkout, not site-packages
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    for key, value in (defaults or {}).items():
        env.setdefault(key, value)
    return env


def spawn(command: list[str], log_path: Path, env_defaults: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start `command` in its own session with stdout and stderr appended to `log_path`."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=child_env(env_defaults), close_fds=True)
