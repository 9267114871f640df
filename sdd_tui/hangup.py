"""Losing the terminal (SIGHUP: an SSH drop, `tmux kill-session`, a closed window) hands the run over.

A run training in the app goes on in a background `sdd-tui resume` process, as the dashboard's `d` does
(sdd_tui.handover), then the app ends. The hand-over waits for the next epoch end and stops there: the
stop checkpoints that epoch, so no training is lost; what it costs is the time the new process takes to
start and load the data (a few seconds) - and, if the process is killed outright before the epoch ends,
that epoch.

The work is done off the signal handler, in a thread of its own that needs nothing from Textual: with
the terminal gone, Textual's writer may die on EIO and its input thread read EOF forever. So the handler
first points stdin at a pipe that never has data and stdout/stderr at /dev/null, then the thread waits
for the engine, starts the background process and asks the app to exit (and ends the process itself
if the app cannot).
"""

from __future__ import annotations

import os
import signal
import threading

EXIT_GRACE_S = 15.0  # the app's own exit after the hand-over; then the process ends without it

_kept_open: list[int] = []  # the write end of stdin's pipe: open, so that reads block instead of seeing EOF


def lose_terminal() -> None:
    """stdin: a pipe that never has data; stdout and stderr: /dev/null (writes succeed, nothing spins)."""
    read_end, write_end = os.pipe()
    _kept_open.append(write_end)
    os.dup2(read_end, 0)
    os.close(read_end)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


class HangupGuard:
    """Installed by the app on its main thread: SIGHUP hands the training run over, then ends the app."""

    def __init__(self, app) -> None:
        self.app = app
        self.thread: threading.Thread | None = None
        self.previous = None  # the handler before install(), put back by uninstall()

    def install(self) -> None:
        hangup = getattr(signal, "SIGHUP", None)
        if hangup is None or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(hangup) is signal.SIG_IGN:  # nohup: the user wants the app to ignore it
            return
        self.previous = signal.signal(hangup, self._on_hangup)

    def uninstall(self) -> None:
        """The app has ended (tests run many apps in one process): SIGHUP does what it did before."""
        if self.thread is not None:  # the terminal is gone: later SIGHUPs must not end the hand-over's process
            return
        if self.previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, self.previous)
            self.previous = None

    def _on_hangup(self, signum, frame) -> None:
        if self.thread is not None:
            return
        lose_terminal()
        # not daemon: the interpreter waits for it even when the app has already ended
        self.thread = threading.Thread(target=self.take_over, name="terminal-lost")
        self.thread.start()

    def take_over(self) -> None:
        """Hand the run training here over (after the next epoch end), then end the app."""
        app = self.app
        app.quitting = True
        live = app.live
        stopping = live is not None and live.control.stop.is_set() and live.handover is None  # asked to stop
        if live is not None and live.running and not stopping:
            handover = live.hand_over(at_epoch_end=True)
            live.finished.wait()
            if live.outcome == "stopped" and handover.in_flight:  # also when the app stopped it before the epoch end
                app.spawn_handover(live, handover)
        self._end_app()

    def _end_app(self) -> None:
        timer = threading.Timer(EXIT_GRACE_S, os._exit, args=(0,))
        timer.daemon = True
        timer.start()
        try:
            self.app.call_from_thread(self.app.exit)
        except RuntimeError:  # the app has ended already
            pass
