"""Shared fixtures: every test gets its own store home; nothing touches the user's data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("SDD_TUI_HOME", str(path))
    return path


@pytest.fixture
def one_thread():
    """One torch thread while the test runs: tiny networks run no faster on two, one thread is immune to a
    busy machine, and a GEMM split over two threads may round differently from the same GEMM in one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def smoke_config():
    from core.config import resolve_config

    def make(*overrides: str):
        return resolve_config("smoke", overrides=list(overrides))

    return make


@pytest.fixture(scope="session")
def run_experiment():
    """A function that runs an experiment into a store at `home`; it returns (run_id, status, events).

    A fixture rather than an import: the tests import the installed package, and never this folder.
    """
    return _run_experiment


def _run_experiment(config, home: Path, **kwargs):
    from core.launch import build_run

    events = []
    run = build_run(config, home, sinks=[events.append], **kwargs)
    status = run.run()
    return run.run_id, status, events
