"""Every file of a run folder, named in one place (open_lth's foundations/paths.py does the same).

    <home>/runs/<id>/events.jsonl        every event, one JSON object a line
    <home>/runs/<id>/checkpoint.pt       the latest checkpoint
    <home>/runs/<id>/rounds/round-<r>.pt each finished round's weights and masks
    <home>/runs/<id>/output.log          a sweep member's output (local engine)
    <home>/runs/<id>/detached.log        the output of a run detached from the app
    <home>/runs/<id>/cohort.log          a packed cohort's own lines, in its first member's folder
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

RUNS_DIR = "runs"
EVENTS = "events.jsonl"
CHECKPOINT = "checkpoint.pt"
ROUNDS_DIR = "rounds"
OUTPUT_LOG = "output.log"
DETACHED_LOG = "detached.log"
COHORT_LOG = "cohort.log"


def new_run_id() -> str:
    """A fresh run id: when it started, and 4 random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class RunPaths:
    """The folder of run `run_id` under `home`, and each file in it."""

    home: Path
    run_id: str

    @property
    def dir(self) -> Path:
        return Path(self.home) / RUNS_DIR / self.run_id

    @property
    def events(self) -> Path:
        return self.dir / EVENTS

    @property
    def checkpoint(self) -> Path:
        return self.dir / CHECKPOINT

    @property
    def rounds_dir(self) -> Path:
        return self.dir / ROUNDS_DIR

    def round_file(self, round_index: int) -> Path:
        """Where the trained weights and masks of one round are kept (for re-dense training and plots)."""
        return self.rounds_dir / f"round-{round_index}.pt"

    @property
    def output_log(self) -> Path:
        return self.dir / OUTPUT_LOG

    @property
    def detached_log(self) -> Path:
        return self.dir / DETACHED_LOG

    @property
    def cohort_log(self) -> Path:
        return self.dir / COHORT_LOG


def runs_root(home: Path) -> Path:
    return Path(home) / RUNS_DIR


def checkpoint_exists(home: Path, run_id: str) -> bool:
    return RunPaths(home, run_id).checkpoint.exists()
