"""Which device a run trains on, and the library versions a run records."""

from __future__ import annotations

import platform

import torch

from ..errors import SddError


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present; asking for a GPU that is not there is a user error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SddError(f"runtime.device={requested} but no CUDA GPU is visible; use --device cpu")
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise SddError(f"runtime.device={requested} but only {torch.cuda.device_count()} GPU(s) are visible")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise SddError("runtime.device=mps but MPS is not available; use --device cpu")
    return torch.device(requested)


def library_versions() -> dict[str, str | None]:
    """Read from the installed packages' metadata, as provenance does: importing torchvision to ask costs
    about 3 s (it imports torch._dynamo), once per run process."""
    from ..provenance import package_version

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": package_version("torchvision")}
