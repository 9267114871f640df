"""Where a run came from: sdd-tui and library versions, the command line, the machine, the git commit.

Collected once per run start (a few milliseconds and one `git` call with a timeout), carried by the
RunStarted event and kept in the run's record; `sdd-tui runs show` prints it, `runs diff` compares it.
Every value is plain JSON; what cannot be told is None.
"""

from __future__ import annotations

import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 2.0


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else what `platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_environment() -> dict[str, Any]:
    """torch, torchvision, CUDA and cuDNN versions, and the GPUs torch sees (none: the CPU model)."""
    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    found: dict[str, Any] = {"torch": torch.__version__, "torchvision": package_version("torchvision"),
                             "cuda": torch.version.cuda, "cudnn": str(cudnn) if cudnn else None,
                             "gpu": None, "gpu_count": 0, "cpu": cpu_model(), "cpu_count": os.cpu_count()}
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names = sorted({torch.cuda.get_device_name(index) for index in range(count)})
        found.update(gpu=", ".join(names), gpu_count=count)
    return found


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit checked out in `folder` and whether tracked files differ from it; None if not a checkout."""
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return None
    changes = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(changes) if changes is not None else None,
            "root": _git(folder, "rev-parse", "--show-toplevel")}


def collect(cwd: Path | None = None, plugins: dict[str, str] | None = None) -> dict[str, Any]:
    """The provenance of a run started now, in `cwd` (default: the current directory); `plugins` names the
    code of a plugin dataset or model (core.plugins.plugin_provenance: module, function, file, sha256)."""
    folder = Path(cwd) if cwd is not None else Path.cwd()
    return {
        **({"plugins": plugins} if plugins else {}),
        "sdd_tui": package_version("sdd-tui"),
        "command": shlex.join(sys.argv),
        "cwd": str(folder),
        "python": platform.python_version(),
        **torch_environment(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "git": git_state(folder),
    }
