"""The sdd-tui engine: configuration, data, models, pruning, training and the run store.

Nothing in this package imports the user interface; it reports through `core.events`.
"""

from core.errors import SddError

__all__ = ["SddError"]
