"""Steering a run from any process: pause, unpause and stop requests through a file in the run's folder.

`sdd-tui pause|unpause|stop ID` and the dashboards (in the app or `sdd-tui watch`) write one request to
runs/<id>/control.json (atomically; the last request wins). Whatever process trains the run (the app, a
detached or headless run, a sweep member, a member of a packed cohort) reads it between batches
(core.engine.training.Control: a stat at most every 0.2 s, a read when the file changed) and answers in the
run's events: PauseChanged when it holds or goes on, RunEnded when it stops, a Message starting with
REFUSED when it cannot do what was asked. A request written before the reading process started was
meant for an earlier process of the run (one that stopped or died): it is ignored.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic import write_json
from ..paths import RunPaths

ACTIONS = ("pause", "unpause", "stop")
REFUSED = "pause refused: "  # the start of the Message a run writes when it refuses a pause


def cohort_refusal(run_id: str) -> str:
    """Why a member of a packed cohort cannot pause: all members take each step together."""
    return (f"{run_id} trains packed with other runs in one model (a cohort), and holding it would hold them all; "
            f"stop it alone instead (`sdd-tui stop {run_id}` keeps its checkpoint; `sdd-tui resume {run_id}` "
            f"goes on later)")


@dataclass(frozen=True)
class Request:
    action: str  # pause | unpause | stop
    id: str  # unique: the same action asked again is a new request
    time: float  # when it was written (time.time())
    by: str = ""  # who asked, for people reading the file


def write_request(home: Path, run_id: str, action: str, by: str = "") -> Request:
    """Ask run `run_id` to pause, unpause or stop at its next batch."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    request = Request(action, uuid.uuid4().hex, time.time(), by)
    write_json(RunPaths(home, run_id).control, asdict(request), durable=False)
    return request


def read_request(path: Path) -> Request | None:
    """The request in `path`; None when there is none or it is not one (a hand-edited file)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        request = Request(str(data["action"]), str(data["id"]), float(data["time"]), str(data.get("by", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return request if request.action in ACTIONS else None


@functools.cache
def process_started() -> float:
    """When this process started (requests from before were meant for an earlier process of the run)."""
    import psutil

    return psutil.Process().create_time()


class RequestReader:
    """The engine's side: `reader()` gives the action of a request it has not seen yet, else None."""

    def __init__(self, path: Path, since: float | None = None) -> None:
        self.path = Path(path)
        self.since = process_started() if since is None else since
        self._stat: tuple | None = None
        self._last_id = ""

    def __call__(self) -> str | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if key == self._stat:
            return None
        self._stat = key
        request = read_request(self.path)
        if request is None or request.id == self._last_id or request.time < self.since:
            return None
        self._last_id = request.id
        return request.action
