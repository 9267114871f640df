"""Checkpoints and round files are read without running code from them; a bad one is one line naming the
file and the fix; checkpoints of the first format (partial round as a 0/1-branch dict) still resume."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import numpy
import pytest
import torch
from sdd_test_helpers import error_line, invoke

from sdd_tui.core.config import resolve_config, validate_config
from sdd_tui.core.events import EpochEnded, Message, RoundEnded
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import RunPaths
from sdd_tui.core.runs.launch import build_run

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = ["prune.rounds=1", "train.epochs=2", "model.hidden=[8]", "runtime.checkpoint_every=0",
        "runtime.checkpoint_minutes=0"]


class RunsCode:
    """Pickles as a call of os.system: what a malicious checkpoint.pt would hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def stop_at(config, home: Path, where: tuple[int, int, str], run_id: str | None = None):
    """Run until the epoch `where` = (round, epoch, branch) ends, then stop; returns (run_id, status)."""
    events = []

    def sink(event):
        events.append(event)
        if isinstance(event, EpochEnded) and (event.round, event.epoch, event.branch) == where:
            run.control.stop.set()

    run = build_run(config, home, run_id=run_id, sinks=[sink])
    return run.run_id, run.run()


@pytest.fixture(scope="module")
def stopped_home(tmp_path_factory) -> tuple[Path, str]:
    """A store holding one run stopped in round 1 (its checkpoint has an unfinished round)."""
    home = tmp_path_factory.mktemp("stopped")
    run_id, status = stop_at(resolve_config("smoke", overrides=TINY), home, (1, 1, "main"))
    assert status == "stopped"
    return home, run_id


@pytest.fixture
def stopped(stopped_home, tmp_path) -> tuple[Path, str]:
    home = tmp_path / "home"
    shutil.copytree(stopped_home[0], home)
    return home, stopped_home[1]


# ---------------------------------------------------------------------------- refused files


def test_a_checkpoint_that_would_run_code_is_refused_by_resume(stopped, tmp_path):
    home, run_id = stopped
    checkpoint, marker = RunPaths(home, run_id).checkpoint, tmp_path / "code-ran"
    torch.save({"round": 0, "model": RunsCode(marker)}, checkpoint)

    result = invoke("resume", run_id, "--home", str(home))

    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert f"{checkpoint} is not a checkpoint sdd-tui wrote (it asks to run " in line
    assert f"move it aside, then `sdd-tui resume {run_id}` starts the run over" in line
    assert not marker.exists()
    assert Store(home).get_run(run_id)["status"] == "stopped"  # the refused resume left the record as it was
    torch.load(checkpoint, weights_only=False)  # what the file does when unpickled unsafely
    assert marker.exists()


def test_a_round_file_that_would_run_code_is_refused_by_analyze(stopped, tmp_path):
    home, run_id = stopped
    round_file, marker = RunPaths(home, run_id).round_file(1), tmp_path / "code-ran"
    round_file.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"round": 1, "model": {}, "masks": {}, "result": RunsCode(marker)}, round_file)

    result = invoke("analyze", run_id, "--redense", "--rounds", "1", "--home", str(home))

    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert f"{round_file} is not a round file sdd-tui wrote (it asks to run " in line
    assert "move it aside and analyze other rounds, or run the experiment again" in line
    assert not marker.exists()


def checkpoint_payload(home: Path, run_id: str) -> dict:
    return torch.load(RunPaths(home, run_id).checkpoint, weights_only=False)


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda payload: {"round": 0}, "(model: Field required)"),
        (lambda payload: {**payload, "partial": {**payload["partial"], "next_epoch": "two"}},
         "(partial.next_epoch: Input should be a valid integer"),
        (lambda payload: {**payload, "init": {"hidden.0.weight": [1.0, 2.0]}},
         "(init.hidden.0.weight: Input should be an instance of Tensor)"),
        (lambda payload: [payload], "(the whole file: Input should be a dictionary"),
    ],
    ids=["missing-keys", "wrong-type", "not-a-tensor", "not-a-dict"],
)
def test_a_checkpoint_of_the_wrong_shape_is_one_line(stopped, spoil, expected):
    home, run_id = stopped
    checkpoint = RunPaths(home, run_id).checkpoint
    torch.save(spoil(checkpoint_payload(home, run_id)), checkpoint)

    result = invoke("resume", run_id, "--home", str(home))

    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert f"{checkpoint} is not a checkpoint sdd-tui wrote {expected}" in line
    assert line.endswith("starts the run over (or start a new run)")


def test_truncated_checkpoint_and_round_file_are_one_line(stopped):
    home, run_id = stopped
    paths = RunPaths(home, run_id)
    for path in (paths.checkpoint, paths.round_file(0)):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    resumed = invoke("resume", run_id, "--home", str(home))
    analyzed = invoke("analyze", run_id, "--redense", "--rounds", "0", "--home", str(home))

    assert (resumed.exit_code, analyzed.exit_code) == (2, 2)
    assert f"checkpoint {paths.checkpoint} is unreadable (" in error_line(resumed)
    assert f"round file {paths.round_file(0)} is unreadable (" in error_line(analyzed)


# ---------------------------------------------------------------------------- the first checkpoint format


def test_a_checkpoint_of_the_first_format_resumes(tmp_path):
    """tests/fixtures/checkpoint-v0.pt: written by the engine before PartialRound (commit 9ed7d64), a run
    of smoke with TINY and retrain.compare_reinit=true stopped after epoch 1 of round 1's reinit branch."""
    home, run_id = tmp_path / "home", "old-format"
    checkpoint = RunPaths(home, run_id).checkpoint
    checkpoint.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "checkpoint-v0.pt", checkpoint)
    config = torch.load(checkpoint, weights_only=False)["config"]
    Store(home).create_run({"id": run_id, "name": "smoke", "config": config, "status": "stopped", "pid": None,
                            "started": 0.0, "rounds": []})

    result = invoke("resume", run_id, "--home", str(home))

    assert result.exit_code == 0, result.output
    assert "resuming round 1 at epoch 2 (reinit branch)" in result.output
    (record,) = Store(home).list_runs()
    assert record["status"] == "finished"
    assert [r["round"] for r in record["rounds"]] == [1] and "reinit" in record["rounds"][0]


def as_first_format(payload: dict) -> dict:
    """A checkpoint as the engine wrote it before PartialRound: branch 0/1, NumPy's RNG state as a tuple."""

    def rng(state: dict) -> dict:
        saved = state["numpy"]
        legacy = (saved["bit_generator"], saved["key"].numpy().astype(numpy.uint32), saved["pos"],
                  saved["has_gauss"], saved["gauss"])
        return {**state, "numpy": legacy}

    partial = payload["partial"]
    partial = {**partial, "branch": {"main": 0, "reinit": 1}[partial["branch"]], "rng": rng(partial["rng"])}
    return {**payload, "partial": partial, "rng": rng(payload["rng"])}


def test_a_first_format_checkpoint_resumes_to_the_uninterrupted_rounds(run_experiment, tmp_path):
    config = resolve_config("smoke", overrides=[*TINY, "train.epochs=3"])
    baseline_id, _, _ = run_experiment(config, tmp_path / "a")
    run_id, status = stop_at(config, tmp_path / "b", (1, 2, "main"))
    assert status == "stopped"
    checkpoint = RunPaths(tmp_path / "b", run_id).checkpoint
    old = as_first_format(torch.load(checkpoint, weights_only=False))
    assert isinstance(old["rng"]["numpy"][1], numpy.ndarray) and old["partial"]["branch"] == 0
    torch.save(old, checkpoint)

    _, status, events = run_experiment(validate_config(old["config"], "old"), tmp_path / "b", run_id=run_id,
                                       resume=True)

    assert status == "finished"
    assert "resuming round 1 at epoch 3 (main branch)" in [e.text for e in events if isinstance(e, Message)]

    def rounds(home: Path, which: str) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in Store(home).get_run(which)["rounds"]]

    assert rounds(tmp_path / "b", run_id) == rounds(tmp_path / "a", baseline_id)
    assert [e.result["round"] for e in events if isinstance(e, RoundEnded)] == [1]
