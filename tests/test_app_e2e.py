"""The installed app, driven as a user over SSH would: the `sdd-tui` script in an 80x24 terminal.

The app runs in a pseudo-terminal; pyte (a terminal emulator) turns its output into the screen a user
sees, and the test types keys: open the `smoke` preset, start it, wait for the curve, quit.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import pyte

COLUMNS, LINES = 80, 24
KEYS = {"down": "\x1b[B", "enter": "\r", "ctrl+s": "\x13", "q": "q"}


class Terminal:
    """A program in a pseudo-terminal of a fixed size, with the screen it draws."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path):
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.ByteStream(self.screen)
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self.process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                        start_new_session=True)
        os.close(slave)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.stream.feed(os.read(self.master, 65536))
                except OSError:  # the program ended and closed the terminal
                    return

    def wait_for(self, predicate, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.2)
            if predicate(self.text()):
                return
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.text()}")

    def press(self, *keys: str) -> None:
        for key in keys:
            os.write(self.master, KEYS.get(key, key).encode())
            self.pump(0.3)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)


def rows_down_to(lines: list[str], name: str) -> int:
    """How many rows below the presets table's first row the preset `name` is."""
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["preset"])
    names = [line.split()[0] if line.split() else "" for line in lines[header + 1:]]
    return names.index(name)


def curve_dots(screen: str) -> int:
    """Cells the accuracy chart draws inside its frame: markers of the curves, not the legend, the frame
    or the dense line."""
    lines = screen.splitlines()
    top = next((i for i, line in enumerate(lines) if "accuracy % vs sparsity" in line), None)
    if top is None:
        return 0
    drawn = 0
    for line in lines[top + 2:]:
        if "└" in line:
            break
        inside = line[max(line.find("┤"), line.find("│")) + 1:line.rfind("│")]
        if not any(char.isalpha() for char in inside):  # legend rows name their series
            drawn += sum(char not in " ─" for char in inside)
    return drawn


@pytest.mark.slow
def test_the_installed_app_runs_the_smoke_preset_at_80x24(tmp_path):
    script = Path(sys.executable).parent / "sdd-tui"
    assert script.exists(), f"no console script at {script}: install the project first"
    env = {**os.environ, "TERM": "xterm-256color", "SDD_TUI_HOME": str(tmp_path / "home"), "COLUMNS": str(COLUMNS),
           "LINES": str(LINES)}
    terminal = Terminal([str(script)], env, tmp_path)
    try:
        terminal.wait_for(lambda screen: "smoke" in screen and "digits-noise40" in screen, "the home screen")
        steps = rows_down_to(terminal.screen.display, "smoke")  # the first preset row is highlighted
        terminal.press(*["down"] * steps, "enter")
        terminal.wait_for(lambda screen: "Start" in screen and "smoke" in screen, "the new-experiment form")
        terminal.press("ctrl+s")
        terminal.wait_for(lambda screen: "FINISHED" in screen, "the run to finish", timeout=180)
        assert "round 3/3" in terminal.text()
        terminal.wait_for(lambda screen: curve_dots(screen) >= 20, "the curve of four rounds")  # redrawn at 1 Hz
        terminal.press("q")
        terminal.pump(3.0)
        assert terminal.process.wait(timeout=30) == 0
    finally:
        terminal.close()
