"""Helpers that several test files share: `from sdd_test_helpers import invoke, error_line, ...`.

A module rather than fixtures, because module-level helpers and module-scoped fixtures call them too.
tests/conftest.py puts this folder on sys.path (it holds no project module: the tests still import the
installed package) and registers this module as a plugin, so that pytest rewrites its asserts.
"""

from __future__ import annotations

from pathlib import Path

import torch


def invoke(*args: str, env: dict[str, str] | None = None):
    """The CLI on `args`, in this process (typer's CliRunner). torch's thread count is put back afterwards: a
    run's runtime.threads sets it process-wide."""
    from typer.testing import CliRunner

    from sdd_tui.cli import app

    threads = torch.get_num_threads()
    try:
        return CliRunner(env=env).invoke(app, list(args))
    finally:
        torch.set_num_threads(threads)


def error_line(result) -> str:
    """The CLI's one `error: ...` line on stderr (a failing run's log on stdout may repeat it); no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def files_of(home: Path) -> dict[str, bytes]:
    """Every file under `home` and its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def run_record(run_id: str, *, name: str = "n", status: str = "finished", config: dict | None = None,
               rounds: list[dict] | None = None, started: float = 0.0, **extra) -> dict:
    """A run's record as the store keeps it, with as little as a test needs."""
    return {"id": run_id, "name": name, "status": status, "config": config if config is not None else {},
            "rounds": rounds if rounds is not None else [], "started": started, **extra}


def add_run(store, record: dict, rounds: list[dict]):
    """`record` created in `store`, then `rounds` added one by one, as a run writes them; the store."""
    store.create_run(record)
    for result in rounds:
        store.add_round(record["id"], result)
    return store
