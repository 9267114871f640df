"""The sdd-tui engine: configuration, data, models, pruning, training and the run store.

Nothing in this package imports the user interface; it reports through `core.events`.
"""

import os

# libgomp's threads spin after every parallel region before they sleep: 3 ms by default, which makes
# CPU training collapse (up to 10x) as soon as other processes share the cores, while not spinning at
# all (OMP_WAIT_POLICY=PASSIVE) halves two-thread training on an idle machine, where a step is
# hundreds of back-to-back small parallel regions. 10,000 spins (about 0.1 ms) keeps the idle speed
# and gives the cores back quickly (figures in docs/PERFORMANCE.md). A user's own OMP_WAIT_POLICY or
# GOMP_SPINCOUNT wins. Read by libgomp when torch loads, so it only counts before `import torch`.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"

from core.errors import SddError  # noqa: E402

__all__ = ["SddError"]
