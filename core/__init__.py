"""The sdd-tui engine: configuration, data, models, pruning, training and the run store.

Nothing in this package imports the user interface; it reports through `core.events`.
"""

import os

# OpenMP threads that spin while waiting (libgomp's default) slow CPU training up to 10x as soon as
# other processes share the cores (measured in docs/PERFORMANCE.md); sleeping threads cost little
# when the machine is idle. Read by libgomp when torch loads, so it only counts before `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from core.errors import SddError  # noqa: E402

__all__ = ["SddError"]
