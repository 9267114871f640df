"""OpenMP's waiting policy for a program that trains on the CPU: set by its entry point, never at import.

libgomp's threads spin after every parallel region before they sleep: 3 ms by default, which makes CPU
training collapse (up to 10x) as soon as other processes share the cores, while not spinning at all
(OMP_WAIT_POLICY=PASSIVE) halves two-thread training on an idle machine, where a step is hundreds of
back-to-back small parallel regions. 10,000 spins (about 0.1 ms) keeps the idle speed and gives the cores
back quickly (figures in docs/PERFORMANCE.md). libgomp reads the setting once, when torch loads it, so it
only counts in the environment of a process before `import torch`: `sdd_tui.cli.main` (the `sdd-tui`
script and every `python -m sdd_tui` process the app and sweeps spawn) sets it first thing. This module
imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import MutableMapping

SPIN = {"GOMP_SPINCOUNT": "10000"}
WAIT_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # a user's own choice of either wins


def set_wait_default(environ: MutableMapping[str, str]) -> None:
    """GOMP_SPINCOUNT=10000 in `environ`, unless it already chooses a waiting policy."""
    if not any(key in environ for key in WAIT_KEYS):
        environ.update(SPIN)


def wait_settings(environ: MutableMapping[str, str]) -> dict[str, str]:
    """The waiting policy `environ` holds, for processes that do not start through the entry point (Ray's
    workers on a cluster started elsewhere: their tasks carry it in their runtime environment)."""
    return {key: environ[key] for key in WAIT_KEYS if key in environ}
