"""Handing a run that trains in the app over to a background `sdd-tui resume` process (detach).

One HandOver per detach, with explicit states:

    requested -> stopping -> spawned -> adopted
                    \\            \\-> failed   (the process exited with an error before it took over)
                     \\-> failed              (the run ended otherwise first, or a stop was asked instead)

- requested: asked for; the engine has not yet reached an epoch end, so a stop would leave nothing
  to resume from. The engine thread moves it on at the next epoch end (`epoch_ended`).
- stopping: the engine stops at the next batch (a stop checkpoints the last epoch end).
- spawned: the engine has stopped and the background process is started.
- adopted: that process has taken the run over (its record names its pid), or finished it.

Each transition the app makes is also an event in the run's events.jsonl (core.events.HandOverChanged:
requested, spawned with the pid, failed with the reason), so a dashboard and `sdd-tui watch` say
"handing over" and "handed over to process PID" instead of "stopped".
"""

from __future__ import annotations

import enum
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sdd_tui.core.events import Event, HandOverChanged
from sdd_tui.core.runs.spawn import sdd_tui_command, spawn


class HandOverState(enum.Enum):
    REQUESTED = "requested"
    STOPPING = "stopping"
    SPAWNED = "spawned"
    ADOPTED = "adopted"
    FAILED = "failed"


IN_FLIGHT = (HandOverState.REQUESTED, HandOverState.STOPPING, HandOverState.SPAWNED)


def resume_command(home: Path, run_id: str) -> list[str]:
    return sdd_tui_command("resume", run_id, "--home", str(home))


ResumeCommand = Callable[[Path, str], list[str]]


class HandOver:
    """The hand-over of run `run_id`; `stop` asks the in-app engine to stop at the next batch, `record`
    writes an event into the run's events."""

    def __init__(self, run_id: str, stop: Callable[[], None], record: Callable[[Event], None] | None = None) -> None:
        self.run_id = run_id
        self._stop = stop
        self._record_event = record or (lambda event: None)
        self.state = HandOverState.REQUESTED
        self.process: subprocess.Popen | None = None
        self.reason = ""  # why it failed
        self._exit_seen = False
        self._spawning = threading.Lock()  # the app and its hang-up guard may both start the process: once

    @property
    def in_flight(self) -> bool:
        return self.state in IN_FLIGHT

    def _record(self, state: HandOverState, pid: int = 0, reason: str = "") -> None:
        self._record_event(HandOverChanged(run_id=self.run_id, time=time.time(), state=state.value, pid=pid,
                                           reason=reason))

    def start(self, resumable: bool, reason: str = "") -> None:
        """Stop now when a checkpoint can be written (`resumable`); otherwise wait for `epoch_ended`. The
        request is recorded first, so that the stop it causes reads as a hand-over, not as a stop."""
        self._record(HandOverState.REQUESTED, reason=reason or ("at the next batch" if resumable else
                                                                "once the first epoch has ended"))
        if resumable:
            self._stopping()

    def epoch_ended(self) -> None:
        """The engine reached an epoch end (engine thread): a stop now leaves a checkpoint."""
        if self.state is HandOverState.REQUESTED:
            self._stopping()

    def _stopping(self) -> None:
        self.state = HandOverState.STOPPING
        self._stop()

    def spawn(self, home: Path, log_path: Path, command: ResumeCommand = resume_command) -> subprocess.Popen:
        """The engine has stopped: start the background process that resumes the run (once)."""
        with self._spawning:
            if self.process is None:
                self.process = spawn(command(home, self.run_id), log_path)
                self.state = HandOverState.SPAWNED
                self._record(HandOverState.SPAWNED, pid=self.process.pid)
        return self.process

    def adopted(self) -> None:
        if self.state is HandOverState.SPAWNED:
            self.state = HandOverState.ADOPTED

    def fail(self, reason: str) -> None:
        if self.in_flight:
            self.state, self.reason = HandOverState.FAILED, reason
            self._record(HandOverState.FAILED, reason=reason)

    def newly_exited(self) -> int | None:
        """The background process's exit code the first time it is seen ended, else None. An exit 0
        means it finished the run (adopted); another code, that it failed (before or after taking over)."""
        if self.process is None or self._exit_seen or self.process.poll() is None:
            return None
        self._exit_seen = True
        code = self.process.returncode
        if code == 0:
            self.adopted()
        else:
            self.fail(f"the background process exited with {code}")
        return code
