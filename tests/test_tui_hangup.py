"""Losing the terminal under a run that trains in the app: the run goes on in a background process.

The installed app runs the smoke preset straight into its dashboard (`--tui`) in a real pseudo-terminal
that is its controlling terminal; closing the terminal's master side (as an SSH drop or a closed window
does) sends it SIGHUP. Then the same through tmux: `tmux kill-session` under the running app. Either way
the run finishes with all its rounds in a `sdd-tui resume` process, and no epoch is trained twice (the
hand-over waits for an epoch end, where the stop checkpoints it).
"""

from __future__ import annotations

import fcntl
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from sdd_tui.core.events import EpochEnded, HandOverChanged, RunEnded, RunStarted, event_from_json
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import RunPaths

LIMIT_S = 120.0  # a bound against hanging, not a speed claim
ROUNDS = [0, 1, 2, 3]
EPOCHS = 400  # per round (seconds of training): still mid-run when a loaded machine gets to the hang-up


def script() -> Path:
    path = Path(sys.executable).parent / "sdd-tui"
    assert path.exists(), f"no console script at {path}: install the project first"
    return path


def command(home: Path) -> list[str]:
    return [str(script()), "--preset", "smoke", "--set", f"train.epochs={EPOCHS}", "--tui", "--home", str(home)]


def wait_until(condition, what: str, limit: float = LIMIT_S) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def events(home: Path) -> list:
    runs = Store(home).list_runs()
    if not runs:
        return []
    path = RunPaths(home, runs[0]["id"]).events  # the record comes a moment before its events file
    lines = path.read_text().splitlines() if path.exists() else []
    return [event_from_json(line) for line in lines if line.endswith("}")]


def training_in_round_1(home: Path) -> bool:
    return any(isinstance(e, EpochEnded) and e.round >= 1 for e in events(home))


def assert_handed_over_and_finished(home: Path, app_pid: int) -> None:
    wait_until(lambda: any(isinstance(e, RunEnded) and e.status == "finished" for e in events(home)),
               "the background process to finish the run")
    record = Store(home).list_runs()[0]
    assert record["status"] == "finished" and [r["round"] for r in record["rounds"]] == ROUNDS
    assert record["pid"] != app_pid
    seen = events(home)
    spawned = [e.pid for e in seen if isinstance(e, HandOverChanged) and e.state == "spawned"]
    assert spawned == [record["pid"]]
    assert [e.status for e in seen if isinstance(e, RunEnded)] == ["stopped", "finished"]
    assert [e.resumed_from_round >= 0 for e in seen if isinstance(e, RunStarted)] == [False, True]
    trained = [(e.round, e.branch, e.epoch) for e in seen if isinstance(e, EpochEnded)]
    assert len(trained) == len(set(trained)) == len(ROUNDS) * EPOCHS  # every epoch once: none lost, none again


@pytest.mark.slow
def test_closing_the_terminal_hands_the_run_over_and_it_finishes(tmp_path):
    home = tmp_path / "home"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def controlling_terminal() -> None:  # in the child, after setsid: the pty becomes its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {**os.environ, "TERM": "xterm-256color"}
    app = subprocess.Popen(command(home), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=tmp_path,
                           start_new_session=True, preexec_fn=controlling_terminal)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        deadline = time.monotonic() + LIMIT_S
        while not training_in_round_1(home):  # keep reading the screen, or the app blocks on a full terminal
            assert time.monotonic() < deadline and app.poll() is None, "the run never reached round 1"
            try:
                os.read(master, 65536)
            except BlockingIOError:
                pass
            time.sleep(0.05)
        os.close(master)  # the terminal goes: the kernel hangs it up and sends the app SIGHUP
        master = -1
        assert app.wait(LIMIT_S) == 0
        assert_handed_over_and_finished(home, app.pid)
    finally:
        if master >= 0:
            os.close(master)
        if app.poll() is None:
            app.kill()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
def test_tmux_kill_session_under_a_run_in_the_app_and_it_finishes_all_its_rounds(tmp_path):
    home, socket = tmp_path / "home", f"sdd-test-{os.getpid()}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    shell_command = " ".join(f"'{part}'" for part in command(home))
    subprocess.run([*tmux, "new-session", "-d", "-s", "run", "-x", "80", "-y", "24", shell_command], check=True,
                   env={**os.environ, "TERM": "xterm-256color"}, timeout=30)
    try:
        wait_until(lambda: training_in_round_1(home), "the run to reach round 1 in tmux")
        app_pid = Store(home).list_runs()[0]["pid"]
        subprocess.run([*tmux, "kill-session", "-t", "run"], check=True, timeout=30)
        assert_handed_over_and_finished(home, app_pid)
        wait_until(lambda: not Path(f"/proc/{app_pid}").exists(), "the app to end")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30)
