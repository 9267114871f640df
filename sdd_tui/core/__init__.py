"""The sdd-tui engine: configuration, data, models, pruning, training and the run store.

Nothing in this package imports the user interface; it reports through `sdd_tui.core.events`.
Importing it changes nothing in the process: a run's torch settings are applied and undone by
`sdd_tui.core.engine.runtime_context.run_context`, and OpenMP's waiting policy is set by the program's entry point
(`sdd_tui.core.engine.openmp`).
"""

from .errors import SddError

__all__ = ["SddError"]
