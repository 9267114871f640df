"""Runs the app starts as background processes, and the steering the dashboards send to any run.

The app trains one run in itself (sdd_tui.live). A second run started from the new-experiment form while
that one trains goes to a background process (`sdd-tui start-detached`), and so does `r` on a stopped,
interrupted or failed run's dashboard (`sdd-tui resume ID`); both log to the run's detached.log and their
dashboards follow the run's events file. A dashboard steers a run trained elsewhere through the run's
control file (core.engine.run_control); the run answers in its events, which the dashboard shows as they come.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sdd_tui.core.config import ExperimentConfig
from sdd_tui.core.engine.run_control import write_request
from sdd_tui.core.paths import new_run_id
from sdd_tui.core.runs.spawn import sdd_tui_command

RESUMABLE = ("stopped", "interrupted", "failed")  # the statuses whose dashboard offers `r`
STEERABLE = ("starting", "running", "paused")  # the statuses a pause or a stop can reach


@dataclass
class Launch:
    """A background process the app started for run `run_id`."""

    run_id: str
    what: str  # "start" | "resume"
    process: subprocess.Popen
    log: Path
    reported: bool = False

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def failure(self) -> str | None:
        """Once, when the process has exited with an error: one line saying so, with its log's last line."""
        code = self.process.poll()
        if self.reported or code is None:
            return None
        self.reported = True
        if code in (0, 130):  # finished, or stopped on request
            return None
        lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines() if self.log.exists() else []
        last = lines[-1] if lines else "no output"
        return f"the background {self.what} of {self.run_id} exited with {code}: {last} (see {self.log})"


def start_detached_command(home: Path, run_id: str, config: ExperimentConfig, preset: str | None) -> list[str]:
    """`sdd-tui start-detached RUN_ID CONFIG_JSON [--preset P] --home HOME`: a new run, in another process."""
    args = ["start-detached", run_id, json.dumps(config.model_dump(mode="json")), "--home", str(home)]
    return sdd_tui_command(*args, *(["--preset", preset] if preset else []))


def start_in_background(app, config: ExperimentConfig, preset: str | None) -> Launch | None:
    """Start `config` as a new run in a background process; None (and an error notification) if it cannot."""
    run_id = new_run_id()
    return _launch(app, run_id, "start", start_detached_command(app.store.home, run_id, config, preset))


def resume_in_background(app, run_id: str) -> Launch | None:
    """`sdd-tui resume ID` in a background process (as the sweeps screen's `u` does for a sweep)."""
    earlier = app.launches.get(run_id)
    if earlier is not None and earlier.running:
        app.notify(f"{run_id} is already being resumed by process {earlier.process.pid}", severity="warning")
        return None
    return _launch(app, run_id, "resume", sdd_tui_command("resume", run_id, "--home", str(app.store.home)))


def _launch(app, run_id: str, what: str, command: list[str]) -> Launch | None:
    log = app.store.paths(run_id).detached_log
    try:
        process = app.spawn_with(command, log)
    except OSError as error:  # no room for the log, no such interpreter any more
        app.notify(f"could not start {run_id} in the background: {error}", severity="error", timeout=15)
        return None
    launch = app.launches[run_id] = Launch(run_id, what, process, log)
    return launch


def ask(home: Path, run_id: str, action: str) -> str:
    """Send pause, unpause or stop to a run trained in another process; the line the dashboard logs."""
    try:
        write_request(home, run_id, action, by="a dashboard")
    except OSError as error:  # a read-only or full disk: the run cannot be asked
        return f"could not ask the run to {action}: cannot write its control file ({error.strerror or error})"
    return {"pause": "pause asked: it holds at its next batch",
            "unpause": "asked to go on",
            "stop": "stop asked: it stops at its next batch; finished rounds are kept"}[action]
