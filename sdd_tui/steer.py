"""Pause, unpause and stop a run that trains in another process, and wait for its answer.

The request goes through the run's control file (core.engine.run_control); the answer is the run's own event
in its events.jsonl: PauseChanged, RunEnded, or a refusal Message. `sdd-tui pause|unpause|stop` waits for
it (`wait_for_answer`); a dashboard writes the request and sees the answer arrive like any other event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sdd_tui.core.engine.run_control import REFUSED, write_request
from sdd_tui.core.errors import SddError
from sdd_tui.core.events import Message, PauseChanged, RunEnded
from sdd_tui.core.history.store import Store, display_status
from sdd_tui.core.runs.progress import Progress
from sdd_tui.follow import EventFollower

PAST = {"pause": "paused", "unpause": "gone on", "stop": "stopped"}


@dataclass
class Answer:
    code: int  # the command's exit status: 0 done, 1 not (in time, or the run ended otherwise), 2 refused
    text: str  # one line


def not_running(run_id: str, status: str, action: str) -> str:
    """Why `action` cannot reach run `run_id`, and what to do instead."""
    if status == "finished":
        return f"run {run_id} is finished; there is nothing to {action}"
    if status == "interrupted":
        return f"run {run_id} is interrupted (its process is gone); `sdd-tui resume {run_id}` continues it"
    return f"run {run_id} is {status}, not running; `sdd-tui resume {run_id}` continues it"


class Steering:
    """One request to run `run_id` (an id or a unique prefix) in `store`, from where its events stand now."""

    def __init__(self, store: Store, run_id: str, action: str) -> None:
        record = store.run(run_id)
        self.store, self.run_id, self.action = store, record.id, action
        status = display_status(record)
        if status != "running":
            raise SddError(not_running(self.run_id, status, action))
        self.progress = Progress()
        self.follower = EventFollower(store.events_path(self.run_id))
        self._fold()

    def _fold(self) -> list:
        events = self.follower.read_new()
        for event in events:
            self.progress.update(event)
        return events

    @property
    def already(self) -> str:
        """A line when the run already is as asked (paused, or not paused), else ''."""
        paused = self.progress.status == "paused"
        if self.action == "pause" and paused:
            return f"run {self.run_id} is already paused; `sdd-tui unpause {self.run_id}` goes on"
        if self.action == "unpause" and not paused:
            return f"run {self.run_id} is not paused"
        return ""

    def send(self, by: str) -> None:
        write_request(self.store.home, self.run_id, self.action, by)

    def answer(self) -> Answer | None:
        """The run's answer among its new events, else None (not yet)."""
        for event in self._fold():
            if isinstance(event, PauseChanged) and event.paused == (self.action == "pause"):
                return Answer(0, self._done_line())
            if isinstance(event, Message) and event.text.startswith(REFUSED) and self.action == "pause":
                return Answer(2, f"error: run {self.run_id} cannot be paused alone: {event.text[len(REFUSED):]}")
            if isinstance(event, RunEnded) and self.progress.status != "handing over":  # a hand-over goes on
                if self.action == "stop" and event.status == "stopped":
                    return Answer(0, self._done_line())
                return Answer(1, f"run {self.run_id} {event.status} before the {self.action} reached it")
        return None

    def _done_line(self) -> str:
        p, run_id = self.progress, self.run_id
        where = f"round {p.round}, epoch {p.epoch}"
        if self.action == "pause":
            return f"run {run_id} paused in {where}; `sdd-tui unpause {run_id}` goes on"
        if self.action == "unpause":
            return f"run {run_id} is training again ({where})"
        return (f"run {run_id} stopped in {where}; its finished rounds and last epoch's checkpoint are kept; "
                f"`sdd-tui resume {run_id}` goes on")

    def process_gone(self) -> bool:
        try:
            return display_status(self.store.run(self.run_id)) == "interrupted"
        except SddError:
            return False


def wait_for_answer(steering: Steering, timeout: float, poll_s: float = 0.1,
                    clock: Callable[[], float] = time.monotonic) -> Answer:
    """Wait until the run answers, its process is gone, or `timeout` seconds have passed."""
    deadline = clock() + timeout
    checked = clock()
    while True:
        answer = steering.answer()
        if answer is not None:
            return answer
        if clock() - checked >= 1.0:  # the store is read once a second, not at every poll
            checked = clock()
            if steering.process_gone():
                return Answer(1, f"run {steering.run_id}'s process ended without answering; it is interrupted "
                                 f"(`sdd-tui resume {steering.run_id}` continues it)")
        if clock() >= deadline:
            return Answer(1, f"run {steering.run_id} has not {PAST[steering.action]} within {timeout:g} s; it acts at "
                             f"its next batch (`sdd-tui watch {steering.run_id}` "
                             f"shows what it does)")
        time.sleep(poll_s)
