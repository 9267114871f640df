"""Every file of a run folder, named in one place (open_lth's foundations/paths.py does the same).

    <home>/runs/<id>/run.json            the run's record: name, status, config, provenance, tags, note...
    <home>/runs/<id>/rounds.json         each finished round's results (rewritten atomically per round)
    <home>/runs/<id>/run.lock            serialises writes of run.json and rounds.json
    <home>/runs/<id>/events.jsonl        every event, one JSON object a line
    <home>/runs/<id>/checkpoint.pt       the latest checkpoint
    <home>/runs/<id>/rounds/round-<r>.pt each finished round's weights and masks
    <home>/runs/<id>/output.log          a sweep member's output (local engine)
    <home>/runs/<id>/detached.log        the output of a run detached from the app
    <home>/runs/<id>/cohort.log          a packed cohort's own lines, in its first member's folder
    <home>/runs/<id>/control.json        the last pause/unpause/stop request (core/engine/run_control.py)
    <home>/sweeps/<id>.json              a sweep's record (the store's copy can be rebuilt from it)
    <home>/sweeps/started-<time>.log     the output of a sweep started from the app (its id is not known yet)

A run id comes from the command line and from store records alike; both go through `RunPaths`, which
refuses an id that could leave `<home>/runs/`, a run folder that is a symbolic link, and a file in it
that is one (an events.jsonl pointing outside the home would have `resume` append to whatever it names).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import SddError

RUNS_DIR = "runs"
SWEEPS_DIR = "sweeps"
SWEEP_LOCK = "{id}.lock"  # held by the process that runs or resumes the sweep
SWEEP_HOLDER = "{id}.holder"  # that process's pid and what it does, for the one who is refused
RUN_FILE = "run.json"
ROUNDS_FILE = "rounds.json"
RUN_LOCK = "run.lock"
EVENTS = "events.jsonl"
CHECKPOINT = "checkpoint.pt"
ROUNDS_DIR = "rounds"
OUTPUT_LOG = "output.log"
DETACHED_LOG = "detached.log"
COHORT_LOG = "cohort.log"
CONTROL = "control.json"

# letters, digits, '.', '_', '-', starting with a letter or digit: no '/', no '..', no hidden name
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def check_id(value: object, kind: str = "run") -> str:
    """`value` if it can name a folder under the home; else SddError."""
    if not is_valid_id(value):
        raise SddError(f"{kind} id {value!r} is not valid (letters, digits, '.', '_' and '-', at most 128, "
                       f"starting with a letter or digit); `sdd-tui doctor` lists records of the wrong shape")
    return value  # type: ignore[return-value]


def new_run_id() -> str:
    """A fresh run id: when it started, and 4 random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class RunPaths:
    """The folder of run `run_id` under `home`, and each file in it."""

    home: Path
    run_id: str

    def __post_init__(self) -> None:
        check_id(self.run_id)

    @property
    def dir(self) -> Path:
        """The run folder; SddError when it is a symbolic link (it could point anywhere)."""
        path = Path(self.home) / RUNS_DIR / self.run_id
        if path.is_symlink():
            raise SddError(f"run folder {path} is a symbolic link; refused (move the run's files into a real "
                           f"folder of that name)")
        return path

    def _file(self, name: str) -> Path:
        """A file (or folder) of the run folder; SddError when it is a symbolic link."""
        path = self.dir / name
        if path.is_symlink():
            raise SddError(f"{path} is a symbolic link; refused (sdd-tui never follows links in a run folder: "
                           f"replace it with a copy of the file, or run `sdd-tui doctor --repair` to set it aside)")
        return path

    @property
    def record(self) -> Path:
        return self._file(RUN_FILE)

    @property
    def rounds(self) -> Path:
        return self._file(ROUNDS_FILE)

    @property
    def lock(self) -> Path:
        return self._file(RUN_LOCK)

    @property
    def events(self) -> Path:
        return self._file(EVENTS)

    @property
    def checkpoint(self) -> Path:
        return self._file(CHECKPOINT)

    @property
    def rounds_dir(self) -> Path:
        return self._file(ROUNDS_DIR)

    def round_file(self, round_index: int) -> Path:
        """Where the trained weights and masks of one round are kept (for re-dense training and plots)."""
        path = self.rounds_dir / f"round-{round_index}.pt"
        if path.is_symlink():
            raise SddError(f"{path} is a symbolic link; refused (replace it with a copy of the file)")
        return path

    @property
    def output_log(self) -> Path:
        return self._file(OUTPUT_LOG)

    @property
    def detached_log(self) -> Path:
        return self._file(DETACHED_LOG)

    @property
    def cohort_log(self) -> Path:
        return self._file(COHORT_LOG)

    @property
    def control(self) -> Path:
        return self.dir / CONTROL


def runs_root(home: Path) -> Path:
    return Path(home) / RUNS_DIR


def sweep_file(home: Path, sweep_id: str) -> Path:
    return Path(home) / SWEEPS_DIR / f"{check_id(sweep_id, 'sweep')}.json"


def sweep_lock(home: Path, sweep_id: str) -> Path:
    return Path(home) / SWEEPS_DIR / SWEEP_LOCK.format(id=check_id(sweep_id, "sweep"))


def sweep_holder(home: Path, sweep_id: str) -> Path:
    return Path(home) / SWEEPS_DIR / SWEEP_HOLDER.format(id=check_id(sweep_id, "sweep"))


def sweep_log(home: Path, started: str) -> Path:
    """The log of a background `sdd-tui sweep` started from the app; `started` is a fresh id (new_run_id())."""
    return Path(home) / SWEEPS_DIR / f"started-{check_id(started, 'log')}.log"


def checkpoint_exists(home: Path, run_id: str) -> bool:
    return RunPaths(home, run_id).checkpoint.exists()


REPORTS_DIR = "reports"


def report_file(home: Path, run_ids: list[str], suffix: str = ".html") -> Path:
    """Where the app writes a report of `run_ids` (`R`): <home>/reports/report-<time>-<first id>[+N].html."""
    first = check_id(run_ids[0]) if run_ids else "none"
    more = f"+{len(run_ids) - 1}" if len(run_ids) > 1 else ""
    return Path(home) / REPORTS_DIR / f"report-{time.strftime('%Y%m%d-%H%M%S')}-{first}{more}{suffix}"
