"""A run training inside the app: the engine in a Textual thread worker, its events posted as messages.

The engine thread writes the store (StoreRecorder) and posts each event to the app; the UI thread
folds the events into a RunView and only reads the store. Pause and stop are the engine's own
Control flags, checked between batches. What the app itself does to the run (pause, resume, hand
over) goes into the same events.jsonl as events (`note`), so `sdd-tui watch` sees it too.

Detach hands the run to a headless process (sdd_tui.handover): stop at the next batch (a stop
checkpoints the last epoch end), then start `sdd-tui resume ID` in its own session so that it
outlives the app and the SSH connection.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import deque

from textual.message import Message
from textual.worker import Worker, WorkerState

from sdd_tui.core.config import ExperimentConfig
from sdd_tui.core.events import EpochEnded, Event, PauseChanged, RunEnded, RunStarted, append_event
from sdd_tui.core.history.store import Store, StoreRecorder
from sdd_tui.core.paths import checkpoint_exists
from sdd_tui.handover import HandOver
from sdd_tui.runview import RunView


@functools.cache  # once per process
def warm_up_engine() -> None:
    """Import the engine (torch) ahead of time in a daemon thread, so that starting a run is quick.

    Called when a run is about to be asked for (the new-experiment form, `--preset ... --tui`), not when
    the app opens: the import takes seconds of CPU and holds the GIL, which would slow browsing the
    history or watching a run on a small machine."""
    threading.Thread(target=lambda: __import__("sdd_tui.core.engine.experiment"), name="warm-up", daemon=True).start()


POST_EVERY_S = 0.1  # epochs can end hundreds of times a second; the UI need not wake for each


class EngineEvents(Message):
    """Posted from the engine thread: the run has new events waiting in its queue."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class SharedRecorder:
    """The store's recorder for a run in the app, shared by the engine thread and the app's own events
    (pause, hand-over), so that both reach events.jsonl in order.

    Before the engine's RunStarted there is no events file yet: the app's events wait and are written
    right after it. After the engine's RunEnded the recorder has closed the file: the app's events are
    appended to it directly (the run's source reads them, and what a background process adds later).
    """

    def __init__(self, store: Store):
        self.store = store
        self.inner = StoreRecorder(store)
        self.lock = threading.Lock()
        self.started = False  # the engine has said RunStarted: the recorder has opened the events file
        self.unwritten: list[Event] = []  # the app's events from before that
        self.ended = False  # the engine has said RunEnded: the recorder has closed the events file
        self.events_end = 0  # the events file's size then: what came later, the app did not train

    def __call__(self, event: Event) -> None:  # the engine thread
        with self.lock:
            self.inner(event)
            if isinstance(event, RunStarted):
                self.started = True
                for early in self.unwritten:
                    self.inner(early)
                self.unwritten.clear()
            if isinstance(event, RunEnded):
                self.ended = True
                self.events_end = self._events_size(event.run_id)

    def note(self, event: Event) -> bool:
        """Record an event of the app's own; False once the engine has ended (appended to the file only)."""
        with self.lock:
            if self.ended:
                append_event(self.store.events_path(event.run_id), event)
                return False
            if self.started:
                self.inner(event)
            else:
                self.unwritten.append(event)
            return True

    def close(self) -> None:
        with self.lock:
            self.inner.close()

    def _events_size(self, run_id: str) -> int:
        try:
            return self.store.events_path(run_id).stat().st_size
        except FileNotFoundError:
            return 0


class LiveRun:
    """One experiment training in a thread worker of `app`."""

    def __init__(self, app, store: Store, config: ExperimentConfig, preset: str | None):
        from sdd_tui.core.runs.launch import build_run  # torch: imported when a run starts, not when the app opens

        self.app = app
        self.store = store
        self.view = RunView()
        built = build_run(config, store.home, preset=preset, recorder=SharedRecorder(store), sinks=[self._sink])
        self.experiment, self.control, self.recorder = built.experiment, built.control, built.recorder
        self.run_id = self.experiment.run_id
        self.view.run_id = self.run_id
        self.view.progress.name = config.name
        self.handover: HandOver | None = None  # set while the run is being handed to a background process
        self.worker: Worker | None = None
        self.finished = threading.Event()  # the engine thread has ended (set after the recorder closed)
        self.outcome: str | None = None  # how the engine ended: finished | stopped (None: it raised)
        self.pending: deque[Event] = deque()  # engine thread appends, UI thread pops: both atomic
        self.posted_at = 0.0

    @property
    def ended(self) -> bool:
        return self.recorder.ended

    @property
    def events_end(self) -> int:
        return self.recorder.events_end

    def start(self) -> None:
        """Start training (once). The dashboard calls this after its first paint, so that building the
        screen, which holds the GIL for a few hundred ms, does not overlap the first epochs."""
        if self.worker is not None:
            return
        self.worker = self.app.run_worker(self._work, name=f"run {self.run_id}", group="engine", thread=True,
                                          exit_on_error=False)

    def _work(self) -> str:
        try:
            self.outcome = self.experiment.run()
            return self.outcome
        finally:
            self.recorder.close()
            self.finished.set()

    def _sink(self, event: Event) -> None:  # the engine thread, after the recorder
        self.pending.append(event)
        handover = self.handover
        if handover is not None and isinstance(event, EpochEnded):
            handover.epoch_ended()  # a stop now checkpoints this epoch end: hand over
        now = time.monotonic()
        if not isinstance(event, EpochEnded) or now - self.posted_at >= POST_EVERY_S:
            self.posted_at = now
            self.app.post_message(EngineEvents(self.run_id))

    def note(self, event: Event) -> None:
        """An event of the app's own (pause, hand-over) into the run's events.jsonl and its view (once the
        engine has ended: into the file only, where the run's source reads it)."""
        if self.recorder.note(event):
            self.pending.append(event)  # the view has it at once (a pause before RunStarted: LiveSource.status)

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
        paused = not self.paused
        self.control.set_paused(paused, announced=True)  # said here at once; the engine does not say it again
        self.note(PauseChanged(run_id=self.run_id, time=time.time(), paused=paused))
        return paused

    def stop(self) -> None:
        self.control.stop.set()

    @property
    def resumable(self) -> bool:
        """Whether a stop now leaves something to resume from: a checkpoint, or an epoch end (a stop
        checkpoints the last one). Call after `drain`: the view knows every epoch end posted so far."""
        return bool(self.view.epochs or self.view.results) or checkpoint_exists(self.store.home, self.run_id)

    def hand_over(self, at_epoch_end: bool = False) -> HandOver:
        """Ask for a hand-over: the engine stops at the next batch once a checkpoint can be written, or
        (`at_epoch_end`, any thread) at the next epoch end, losing no training."""
        if self.handover is not None and self.handover.in_flight:
            return self.handover
        handover = HandOver(self.run_id, self.control.stop.set, self.note)
        self.control.paused.clear()
        if not at_epoch_end:
            self.drain()  # the UI thread's: `resumable` reads the view
        # recorded before any stop, so that the stop reads as a hand-over
        handover.start(resumable=not at_epoch_end and self.resumable,
                       reason="at the next epoch end (the terminal was lost)" if at_epoch_end else "")
        self.handover = handover  # from now on the engine's next epoch end moves it on (if it waits)
        return handover

    def cancel_hand_over(self, reason: str) -> None:
        if self.handover is not None:
            self.handover.fail(reason)
            self.handover = None


def leave_a_core_for_the_ui(config: ExperimentConfig, cores: int | None = None) -> ExperimentConfig:
    """Without a thread count, train on every core but one: on a busy 2-core machine torch's OpenMP
    threads and the UI thread preempted each other and training in the app ran 10-20x slower."""
    if config.runtime.threads is not None:
        return config
    threads = max(1, (cores or os.cpu_count() or 1) - 1)
    return config.model_copy(update={"runtime": config.runtime.model_copy(update={"threads": threads})})
