"""The one error type for mistakes a user can make (bad preset, bad value, missing data...)."""


class SddError(Exception):
    """A user-facing error: its message is one line that names the fix."""


class StopRequested(Exception):
    """Raised inside the training loop when the stop flag is set; not a failure."""
