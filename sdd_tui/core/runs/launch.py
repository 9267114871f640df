"""One way to build a run: the engine, the sinks its events go to, and the control that pauses and stops it.

The CLI, the app, sweeps (local and Ray) and the tests all build their runs here; what differs
between them is only the recorder (the store's, a sweep member's, or a relay to a Ray driver) and
the extra sinks (a headless printer, the app's queue, a test's list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import ExperimentConfig
from ..engine.experiment import Experiment
from ..engine.round_branches import RoundBranchTrainer
from ..engine.training import Control
from ..events import Event, Sink, fanout


class Recorder(Protocol):
    """The sink that keeps a run's events (core.history.store.StoreRecorder and its kin); closed when the run ends."""

    def __call__(self, event: Event) -> None: ...

    def close(self) -> None: ...


@dataclass
class RunHandle:
    """A run ready to start: `run()` trains it, `control` pauses or stops it, `recorder` keeps its events."""

    experiment: Experiment
    control: Control
    recorder: Recorder

    @property
    def run_id(self) -> str:
        return self.experiment.run_id

    def run(self) -> str:
        """Train to the end (blocking) and close the recorder, also when the run fails; returns the status."""
        try:
            return self.experiment.run()
        finally:
            self.recorder.close()


def build_run(config: ExperimentConfig, home: Path, *, preset: str | None = None, run_id: str | None = None,
              resume: bool = False, recorder: Recorder | None = None, sinks: Iterable[Sink] = (),
              control: Control | None = None,
              branch_trainer: Callable[..., RoundBranchTrainer] = RoundBranchTrainer) -> RunHandle:
    """The engine for `config` under `home`; each event goes to `recorder` (default: a StoreRecorder on the
    store at `home`), then to each of `sinks` in order. `branch_trainer` builds what trains its branches
    (core.runs.cohort's, for a member of a packed cohort)."""
    from ..history.store import Store, StoreRecorder

    control = control or Control()
    recorder = recorder if recorder is not None else StoreRecorder(Store(home))
    experiment = Experiment(config, fanout(recorder, *sinks), home, preset=preset, run_id=run_id, control=control,
                            resume=resume, branch_trainer=branch_trainer)
    return RunHandle(experiment, control, recorder)
