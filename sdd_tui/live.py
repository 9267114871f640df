"""A run training inside the app: the engine in a Textual thread worker, its events posted as messages.

The engine thread writes the store (StoreRecorder) and posts each event to the app; the UI thread
folds the events into a RunView and only reads the store. Pause and stop are the engine's own
Control flags, checked between batches.

Detach hands the run to a headless process: stop at the next batch (a stop checkpoints the last
epoch end), then start `sdd-tui resume ID` in its own session so that it outlives
the app and the SSH connection.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from textual.message import Message
from textual.worker import Worker, WorkerState

from core.config import ExperimentConfig
from core.events import EpochEnded, Event
from core.paths import RunPaths
from core.store import Store, StoreRecorder
from sdd_tui.runview import RunView


def warm_up_engine() -> None:
    """Import the engine (torch) ahead of time in a daemon thread, so that starting a run is quick."""
    import threading

    threading.Thread(target=lambda: __import__("core.experiment"), name="warm-up", daemon=True).start()


POST_EVERY_S = 0.1  # epochs can end hundreds of times a second; the UI need not wake for each


class EngineEvents(Message):
    """Posted from the engine thread: the run has new events waiting in its queue."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class LiveRun:
    """One experiment training in a thread worker of `app`."""

    def __init__(self, app, store: Store, config: ExperimentConfig, preset: str | None):
        from core.launch import build_run  # torch: imported when a run starts, not when the app opens

        self.app = app
        self.store = store
        self.view = RunView()
        built = build_run(config, store.home, preset=preset, recorder=StoreRecorder(store), sinks=[self._sink])
        self.experiment, self.control, self.recorder = built.experiment, built.control, built.recorder
        self.run_id = self.experiment.run_id
        self.view.run_id = self.run_id
        self.view.progress.name = config.name
        self.detach_requested = False
        self.epoch_seen = False  # after the first epoch end a stop writes a checkpoint to resume from
        self.worker: Worker | None = None
        self.pending: deque[Event] = deque()  # engine thread appends, UI thread pops: both atomic
        self.posted_at = 0.0

    def start(self) -> None:
        """Start training (once). The dashboard calls this after its first paint, so that building the
        screen, which holds the GIL for a few hundred ms, does not overlap the first epochs."""
        if self.worker is not None:
            return
        self.worker = self.app.run_worker(self._work, name=f"run {self.run_id}", group="engine", thread=True,
                                          exit_on_error=False)

    def _work(self) -> str:
        try:
            return self.experiment.run()
        finally:
            self.recorder.close()

    def _sink(self, event: Event) -> None:  # runs in the engine thread, after the recorder
        self.epoch_seen = self.epoch_seen or isinstance(event, EpochEnded)
        if self.detach_requested and self.epoch_seen:
            self.control.stop.set()  # a stop now checkpoints the last epoch end: hand over
        self.pending.append(event)
        now = time.monotonic()
        if not isinstance(event, EpochEnded) or now - self.posted_at >= POST_EVERY_S:
            self.posted_at = now
            self.app.post_message(EngineEvents(self.run_id))

    def drain(self) -> None:
        """Fold the waiting events into the view (UI thread; the dashboard's timer also calls it)."""
        while self.pending:
            self.view.apply(self.pending.popleft())

    @property
    def running(self) -> bool:
        """True from the start request until the engine thread has ended."""
        if self.worker is None:
            return True
        return self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    @property
    def paused(self) -> bool:
        return self.control.paused.is_set()

    def toggle_pause(self) -> bool:
        if self.paused:
            self.control.paused.clear()
        else:
            self.control.paused.set()
        return self.paused

    def stop(self) -> None:
        self.control.stop.set()

    def request_detach(self) -> bool:
        """Stop at the next batch once a checkpoint can be written; False until the first epoch ends."""
        from core.paths import checkpoint_exists

        self.detach_requested = True
        self.control.paused.clear()
        if self.epoch_seen or checkpoint_exists(self.store.home, self.run_id):
            self.control.stop.set()
            return True
        return False


def leave_a_core_for_the_ui(config: ExperimentConfig, cores: int | None = None) -> ExperimentConfig:
    """Without a thread count, train on every core but one: on a busy 2-core machine torch's OpenMP
    threads and the UI thread preempted each other and training in the app ran 10-20x slower."""
    if config.runtime.threads is not None:
        return config
    threads = max(1, (cores or os.cpu_count() or 1) - 1)
    return config.model_copy(update={"runtime": config.runtime.model_copy(update={"threads": threads})})


def resume_command(home: Path, run_id: str) -> list[str]:
    return [sys.executable, "-m", "sdd_tui", "resume", run_id, "--home", str(home)]


def spawn_detached(home: Path, run_id: str, command: list[str] | None = None) -> subprocess.Popen:
    """Start the headless resume in its own session (it survives the app and a dropped SSH link)."""
    log_path = RunPaths(home, run_id).detached_log
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    project_root = str(Path(__file__).resolve().parent.parent)  # so `-m sdd_tui` works from a checkout too
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH", "")) if p)
    with open(log_path, "ab") as log:
        return subprocess.Popen(command or resume_command(home, run_id), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env, close_fds=True)
