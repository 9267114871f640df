"""Where a dashboard's run comes from: the one interface it polls.

- LiveSource: the run trains in this app (sdd_tui.live); its events arrive through a queue.
- FollowedSource: another process writes the run's events.jsonl; read what it appends (like `tail -f`).
- StoredSource: only the store's record is there (no events file): read it once.

Each keeps a RunView up to date when polled and says what the status badge and the source line show.
"""

from __future__ import annotations

import time
from typing import Protocol

from core.errors import SddError
from core.store import Store, display_status
from sdd_tui.follow import EventFollower
from sdd_tui.handover import HandOver, HandOverState
from sdd_tui.live import LiveRun
from sdd_tui.runview import RunView

STATUS_CHECK_S = 2.0  # how often a followed run's process is checked for being alive


class RunSource(Protocol):
    view: RunView
    live: LiveRun | None  # the run when it trains in this app (the keys that steer it apply)

    def poll(self) -> None:
        """Fold whatever is new into `view`."""

    @property
    def status(self) -> str:
        """The status badge: running, paused, handing over, finished, interrupted, ..."""

    @property
    def label(self) -> str:
        """Where the run is read from: live in this app, watching, from the store, ..."""


class LiveSource:
    def __init__(self, live: LiveRun) -> None:
        self.live = live
        self.view = live.view

    def poll(self) -> None:
        self.live.drain()

    @property
    def training(self) -> bool:
        return self.live.running

    @property
    def status(self) -> str:
        return "paused" if self.live.running and self.live.paused else self.view.status

    @property
    def label(self) -> str:
        return "live in this app" if self.live.running else "trained in this app"


class StoredSource:
    """A run known only from its store record."""

    live = None

    def __init__(self, store: Store, run_id: str) -> None:
        self.view = RunView(run_id=run_id)
        try:
            record = store.get_run(run_id)
            self.view.load_record(record, display_status(record))
        except SddError as error:
            self.view.fail(str(error))

    def poll(self) -> None:
        pass

    @property
    def status(self) -> str:
        return self.view.status

    @property
    def label(self) -> str:
        return "from the store"


class FollowedSource:
    """A run whose events another process appends; `handover` is the hand-over that process takes."""

    live = None

    def __init__(self, store: Store, run_id: str, handover: HandOver | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.handover = handover
        self.view = RunView(run_id=run_id)
        self.follower = EventFollower(store.events_path(run_id))
        self.store_status: str | None = None
        self.status_checked = 0.0

    def poll(self) -> None:
        for event in self.follower.read_new():
            self.view.apply(event)
        self._check_store_status()
        self._settle_handover()

    @property
    def handing_over(self) -> bool:
        return self.handover is not None and self.handover.state is HandOverState.SPAWNED

    def _settle_handover(self) -> None:
        """The file is read whole on the first poll: "running" after that is the background process's."""
        if self.handing_over and self.view.status == "running":
            self.handover.adopted()

    def _check_store_status(self) -> None:
        """A followed run whose process died shows as interrupted (checked every few seconds)."""
        now = time.monotonic()
        if self.view.status not in ("running", "starting") or now - self.status_checked < STATUS_CHECK_S:
            return
        self.status_checked = now
        try:
            self.store_status = display_status(self.store.get_run(self.run_id))
        except SddError:
            return

    @property
    def status(self) -> str:
        if self.handing_over:
            return "handing over"
        if self.view.status in ("running", "starting") and self.store_status == "interrupted":
            return "interrupted"
        return self.view.status

    @property
    def label(self) -> str:
        if self.handing_over:
            return "to a background process"
        return "watching" if self.status in ("running", "starting") else "from the store"


def open_source(store: Store, run_id: str) -> FollowedSource | StoredSource:
    """Follow the run's events file, or read its record when there is none."""
    if store.events_path(run_id).exists():
        return FollowedSource(store, run_id)
    return StoredSource(store, run_id)
