"""The one error type for mistakes a user can make (bad preset, bad value, missing data...)."""

import re


class SddError(Exception):
    """A user-facing error: its message is one line that names the fix."""


class StopRequested(Exception):
    """Raised inside the training loop when the stop flag is set; not a failure."""


_ALLOCATION = re.compile(r"(?:can't allocate memory|not enough memory): you tried to allocate (\d+) bytes")
TOO_BIG_FIX = "lower data.train_size, data.synthetic_train, data.shape, model.width or model.hidden"


def allocation_failure(error: BaseException) -> int | None:
    """How many bytes a failed CPU allocation asked for, or None if `error` is not one."""
    match = _ALLOCATION.search(str(error)) if isinstance(error, RuntimeError) else None
    return int(match.group(1)) if match else None


def too_big(asked: int, where: str) -> SddError:
    """The one line for a model or dataset that does not fit in memory."""
    from .format import size

    return SddError(f"out of memory {where}: asked for {size(asked)} ({asked:,} bytes); {TOO_BIG_FIX}")
