"""Where a dashboard's run comes from: the one interface it polls.

- LiveSource: the run trains in this app (sdd_tui.live); its events arrive through a queue. After a
  detach the same view goes on from the events file, where the background process writes.
- FollowedSource: another process writes the run's events.jsonl; read what it appends (like `tail -f`).
- StoredSource: only the store's record is there (no events file): read it once.

Each keeps a RunView up to date when polled and says what the status badge and the source line show.
The status comes from the events themselves (pauses and hand-overs are events too), so a dashboard
in the app and `sdd-tui watch` elsewhere say the same.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Protocol

from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import Store, display_status
from sdd_tui.follow import EventFollower
from sdd_tui.live import LiveRun
from sdd_tui.runview import RunView

STATUS_CHECK_S = 2.0  # how often a followed run's process is checked for being alive
ACTIVE = ("running", "starting", "paused", "handing over")


class RunSource(Protocol):
    view: RunView

    @property
    def live(self) -> LiveRun | None:
        """The run while it trains in this app (the keys that steer it apply), else None."""

    def poll(self) -> None:
        """Fold whatever is new into `view`."""

    @property
    def status(self) -> str:
        """The status badge: running, paused, handing over, finished, interrupted, ..."""

    @property
    def label(self) -> str:
        """Where the run is read from: live in this app, watching, from the store, ..."""

    @property
    def process_id(self) -> int | None:
        """The process that trains the run, when it runs on this host; else None."""


class StoredSource:
    """A run known only from its store record."""

    live = None

    def __init__(self, store: Store, run_id: str) -> None:
        self.view = RunView(run_id=run_id)
        try:
            record = store.run(run_id)
            self.view.load_record(record, display_status(record))
        except SddError as error:
            self.view.fail(str(error))

    process_id = None

    def poll(self) -> None:
        pass

    @property
    def status(self) -> str:
        return self.view.status

    @property
    def label(self) -> str:
        return "from the store"


class FollowedSource:
    """A run whose events another process appends, from byte `offset` of its file into `view`."""

    live = None

    def __init__(self, store: Store, run_id: str, view: RunView | None = None, offset: int = 0) -> None:
        self.store = store
        self.run_id = run_id
        self.view = view or RunView(run_id=run_id)
        self.follower = EventFollower(store.events_path(run_id), offset)
        self.store_status: str | None = None
        self.status_checked = 0.0
        self.process_id: int | None = None

    def poll(self) -> None:
        for event in self.follower.read_new():
            self.view.apply(event)
        self._check_store_status()

    def _check_store_status(self) -> None:
        """A followed run whose process died shows as interrupted (checked every few seconds)."""
        now = time.monotonic()
        if self.view.status not in ACTIVE or now - self.status_checked < STATUS_CHECK_S:
            return
        self.status_checked = now
        try:
            record = self.store.run(self.run_id)
        except SddError:
            return
        self.store_status = display_status(record)
        here = record.host in (None, socket.gethostname())
        self.process_id = record.pid if here and self.store_status == "running" else None

    @property
    def status(self) -> str:
        if self.view.status in ("running", "starting", "paused") and self.store_status == "interrupted":
            return "interrupted"
        return self.view.status

    @property
    def label(self) -> str:
        if self.view.progress.handing_over:
            return "to a background process"
        return "watching" if self.status in ACTIVE else "from the store"


class LiveSource:
    """A run training in this app; once handed over, followed on from where the engine here stopped."""

    def __init__(self, live: LiveRun, store: Store) -> None:
        self._live = live
        self.store = store
        self.view = live.view
        self.after: FollowedSource | None = None  # the events file after the engine here ended

    @property
    def live(self) -> LiveRun | None:
        return self._live if self._live.running else None

    def poll(self) -> None:
        self._live.drain()
        if self.after is None and self._live.ended and not self._live.running and self._live.handover is not None:
            self.after = FollowedSource(self.store, self._live.run_id, self.view, self._live.events_end)
        if self.after is not None:
            self.after.poll()

    @property
    def status(self) -> str:
        if self.after is not None:
            return self.after.status
        if self._live.running and self._live.paused and self.view.status in ("starting", "running"):
            return "paused"  # asked for before the engine said RunStarted: its event waits for that
        return self.view.status

    @property
    def process_id(self) -> int | None:
        if self._live.running:
            return os.getpid()
        return self.after.process_id if self.after is not None else None

    @property
    def label(self) -> str:
        if self._live.running:
            return "live in this app"
        if self.after is not None:
            return self.after.label
        return "trained in this app"


def open_source(store: Store, run_id: str) -> FollowedSource | StoredSource:
    """Follow the run's events file, or read its record when there is none."""
    if store.events_path(run_id).exists():
        return FollowedSource(store, run_id)
    return StoredSource(store, run_id)
