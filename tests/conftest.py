"""Shared fixtures: every test gets its own store home; nothing touches the user's data dir."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from sdd_tui.core.engine.openmp import set_wait_default

# OpenMP's waiting policy as the `sdd-tui` entry point sets it, before torch loads libgomp: with libgomp's
# default spinning, this process's two torch threads slowed the tests several-fold on a machine shared with
# other work (sdd_tui/core/engine/openmp.py). A policy the developer chose still wins.
set_wait_default(os.environ)

import torch  # noqa: E402  (after the waiting policy: libgomp reads it once, when torch loads it)

torch.set_num_threads(2)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("SDD_TUI_HOME", str(path))
    return path


@pytest.fixture(autouse=True)
def settings_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's settings (its theme) in a temporary folder: a test never reads or writes the user's."""
    path = tmp_path / "config"
    monkeypatch.setenv("SDD_TUI_CONFIG", str(path))
    return path


async def _wait_for_idle_event_loop(min_sleep: float = 1 / 50, max_sleep: float = 1) -> None:
    """textual's `wait_for_idle` (its pilot's idea of "the app has settled"), measuring the CPU time of the event
    loop's thread rather than of the whole process: a run training in a thread of the app kept the process busy,
    so every key a test pressed waited textual's full second twice, and every `pilot.pause()` once."""
    import asyncio

    start = time.monotonic()
    while True:
        cpu = time.thread_time()
        await asyncio.sleep(1 / 50)
        elapsed = time.monotonic() - start
        if elapsed >= max_sleep or (elapsed > min_sleep and time.thread_time() - cpu < 1 / 50 / 20):
            return


@pytest.fixture(autouse=True, scope="session")
def textual_waits_for_its_own_thread():
    """The app's pilot waits for the event loop to idle, not for every thread of the process (see above)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("textual.app.wait_for_idle", _wait_for_idle_event_loop, raising=False)  # a speed-up only
        patch.setattr("textual.pilot.wait_for_idle", _wait_for_idle_event_loop, raising=False)
        yield


WAIT_LIMIT_S = 90.0  # how long the app's tests wait for a condition: a bound against hanging, not a speed claim


@pytest.fixture
def wait_for():
    """`await wait_for(pilot, condition, what)`: pause the app's test pilot until `condition()` holds; an
    AssertionError naming `what` after WAIT_LIMIT_S."""
    async def wait(pilot, condition, what: str, limit: float = WAIT_LIMIT_S) -> None:
        deadline = time.monotonic() + limit
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}")
            await pilot.pause(0.05)

    return wait


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
    from sdd_tui.core.config import resolve_config

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
    from sdd_tui.core.runs.launch import build_run

    events = []
    run = build_run(config, home, sinks=[events.append], **kwargs)
    status = run.run()
    return run.run_id, status, events


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """write(source) -> a module name importable from the working directory (tmp_path), as a plugin."""
    import importlib
    import sys
    import textwrap
    import uuid

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the plugin loader may add the working directory
    names: list[str] = []

    def write(source: str) -> str:
        name = f"sdd_plugin_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        importlib.invalidate_caches()  # the file is newer than the import system's listing of the folder
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def as_on_a_gpu(monkeypatch: pytest.MonkeyPatch):
    """Every fast-path decision made as for a CUDA card with bf16 (core.engine.runtime_choices; the slow path still
    gets none), compiling with a cheap backend: the engine then takes its GPU branches on the CPU. Returns the
    backend; torch.backends.cudnn.benchmark is put back afterwards."""
    import dataclasses

    from sdd_tui.core.engine.runtime_choices import RuntimeChoices

    decide, cuda, backend = RuntimeChoices.for_device.__func__, torch.device("cuda"), "aot_eager"

    def for_device(cls, device, fast, amp, bf16=None):
        return dataclasses.replace(decide(cls, cuda, fast, amp, bf16=True), compile_backend=backend)

    monkeypatch.setattr(RuntimeChoices, "for_device", classmethod(for_device))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)
    return backend


# The helpers the test files share (tests/sdd_test_helpers.py), importable by name: this folder on sys.path
# (no project module lives here), and the module registered as a plugin so that pytest rewrites its asserts.
sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest_plugins = ["sdd_test_helpers"]


@pytest.fixture
def small_mnist1d(monkeypatch):
    """MNIST-1D's own generator with its default arguments, but 200 samples instead of 5,000 (fast), never a
    download."""
    import mnist1d.data

    defaults = mnist1d.data.get_dataset_args

    def fewer(as_dict=False):
        args = defaults(as_dict=False)
        args.num_samples = 200
        return args

    monkeypatch.setattr(mnist1d.data, "get_dataset_args", fewer)
    monkeypatch.setattr("requests.get", lambda *a, **k: pytest.fail("mnist1d tried to download"))
    return mnist1d.data


SIGNALS_A_RUN_HANDLES = ("SIGINT", "SIGTERM", "SIGHUP")


def _default_disposition(name: str):
    import signal

    return signal.default_int_handler if name == "SIGINT" else signal.SIG_DFL


@pytest.fixture(autouse=True)
def default_signal_dispositions():
    """Every test starts with Python's default SIGINT/SIGTERM/SIGHUP handling, and leaves it so.

    A run's child process inherits an ignored signal (SIG_IGN survives exec), and the CLI and the app keep an
    ignored SIGHUP ignored, as under nohup: a signal ignored in this process makes the signal tests (in-process
    and in child processes) see a nohup'd terminal. Where the ignored signals came from: not a test (checked
    at the end of every test: none leaves one ignored; `ray.init` leaves a SIGTERM handler of its own), but
    the way pytest was started: `pytest ... &` from a script (a non-interactive shell's background job)
    starts with SIGINT ignored, and `nohup pytest` with SIGHUP ignored."""
    import signal

    def reset() -> None:
        for name in SIGNALS_A_RUN_HANDLES:
            signal.signal(getattr(signal, name), _default_disposition(name))

    reset()
    yield
    reset()
