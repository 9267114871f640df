"""A full disk while a checkpoint is written is an OSError naming it, never torch's 'unexpected pos'.

torch.save's zip writer catches the file's OSError and raises RuntimeError('[enforce fail at
inline_container.cc] unexpected pos ...') instead (seen on a full tmpfs); atomic_save hands the
OSError on, so a run fails with 'the disk is full' and the previous checkpoint stays.
"""

from __future__ import annotations

import errno
import io
import os

import pytest
import torch

from sdd_tui.core.atomic import atomic_save


class FillsUp(io.RawIOBase):
    """A file that takes `room` bytes, then says the disk is full (as a real full disk does)."""

    def __init__(self, real, room: int):
        self.real, self.room = real, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.real.write(data)

    def fileno(self) -> int:
        return self.real.fileno()

    def flush(self) -> None:
        self.real.flush()

    def close(self) -> None:
        if not self.closed:
            super().close()  # flushes first
            self.real.close()


def test_torch_itself_hides_a_full_disk_behind_a_runtime_error(tmp_path):
    with open(tmp_path / "raw.pt", "wb") as real, pytest.raises(RuntimeError, match="unexpected pos"):
        torch.save({"w": torch.zeros(100_000)}, FillsUp(real, room=2_000))


def test_atomic_save_says_the_disk_is_full_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint.pt"
    atomic_save({"round": 0}, target)
    before = target.read_bytes()
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: FillsUp(real_fdopen(fd, mode, *a, **k), 2_000))
    with pytest.raises(OSError) as raised:
        atomic_save({"round": 1, "w": torch.zeros(100_000)}, target)
    assert raised.value.errno == errno.ENOSPC
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left behind


class EventsFillUp:
    """events.jsonl on a disk that fills up after `room` more lines."""

    def __init__(self, handle, room: list[int]):
        self.handle, self.room = handle, room

    def write(self, text: str) -> int:
        if self.room[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room[0] -= 1
        return self.handle.write(text)

    def __getattr__(self, name):
        return getattr(self.handle, name)


def test_a_full_disk_while_recording_events_is_one_line_and_resume_finishes(tmp_path, monkeypatch):

    from typer.testing import CliRunner

    import sdd_tui.core.history.store
    from sdd_tui import core
    from sdd_tui.cli import app
    from sdd_tui.core.history.store import Store

    home = tmp_path / "home"
    room = [12]  # RunStarted, a message, round 0's epochs and its end... then the disk is full
    real_open = core.history.store.open_events_for_append
    monkeypatch.setattr(core.history.store, "open_events_for_append", lambda path: EventsFillUp(real_open(path), room))
    result = CliRunner().invoke(app, ["--preset", "smoke", "--set", "train.epochs=2", "--home", str(home)])
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: cannot record run ") and "(the disk is full)" in line
    assert "then `sdd-tui resume" in line
    (record,) = Store(home).list_runs()
    resumed = CliRunner().invoke(app, ["resume", record["id"], "--home", str(home)])
    assert resumed.exit_code == 0, resumed.output
    assert [r["round"] for r in Store(home).get_run(record["id"])["rounds"]] == [0, 1, 2, 3]
