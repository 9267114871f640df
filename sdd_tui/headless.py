"""The headless face: a line per epoch and per round, a summary table at the end.

Plain lines when stdout is not a terminal (nohup, log files); a rich progress bar above the
round lines when it is. `run_headless` runs an experiment in the foreground with this reporter,
turning SIGINT, SIGTERM and SIGHUP into a clean stop.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from sdd_tui.core.analysis.phases import detect_phases, phases_lines
from sdd_tui.core.events import (
    EpochEnded,
    Event,
    Message,
    PauseChanged,
    RoundEnded,
    RoundStarted,
    RunEnded,
    RunStarted,
    Sink,
)
from sdd_tui.core.format import format_seconds, pct, printable
from sdd_tui.core.runs.progress import Progress as RunProgress
from sdd_tui.rounds_table import rounds_table

if TYPE_CHECKING:
    from sdd_tui.core.config import ExperimentConfig
    from sdd_tui.core.engine.training import Control
    from sdd_tui.core.history.store import Store, StoreRecorder


def _pct(value: float | None) -> str:
    """Fixed width, so that epoch lines line up in a log."""
    return pct(value, missing="-").rjust(6)


def round_line(result: dict, rounds: int) -> str:
    return (
        f"round {result['round']}/{rounds} done: sparsity {100 * result['sparsity']:.2f}% "
        f"(remaining {result['remaining']:,}) test {_pct(result['test_acc'])} "
        f"(best {_pct(result['best_test_acc'])}) train {_pct(result['train_acc'])} "
        f"memorised {_pct(result.get('noisy_memorized'))} {result['seconds']:.1f}s"
    )


class HeadlessReporter:
    """A sink that writes the run's progress to a stream."""

    def __init__(self, stream: TextIO | None = None, rich_progress: bool | None = None):
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream, highlight=False, markup=False, soft_wrap=True)  # names are text
        self.live = self.stream.isatty() if rich_progress is None else rich_progress
        self.progress = RunProgress()
        self._bar: Progress | None = None
        self._task = None

    def _print(self, text: str) -> None:
        text = printable(text)  # a run name or an error with an ESC in it reaches the terminal escaped
        if self._bar is not None:
            self._bar.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, event: Event) -> None:
        self.progress.update(event)
        p = self.progress
        if isinstance(event, RunStarted):
            verb = "resuming" if event.resumed_from_round >= 0 else "run"
            self._print(f"{verb} {event.run_id}")
            self._print(f"{event.name} on {event.device}: {event.rounds} pruning rounds after the dense one, "
                        f"{event.epochs} epochs each")
            if self.live:
                self._start_bar()
        elif isinstance(event, RoundStarted):
            self._print(f"round {event.round}/{event.rounds}: sparsity {100 * event.sparsity:.2f}%, "
                        f"{event.remaining:,} weights remain")
        elif isinstance(event, EpochEnded):
            self._epoch(event)
        elif isinstance(event, RoundEnded):
            self._print(round_line(event.result, event.rounds))
        elif isinstance(event, Message):
            if event.level == "error":  # a run's failure: the command says it once, as its own `error: ...` line
                return
            prefix = "" if event.level == "info" else f"{event.level}: "
            self._print(f"{prefix}{event.text}")
        elif isinstance(event, PauseChanged):  # asked by `sdd-tui pause|unpause ID` or a dashboard
            self._print(f"paused between batches; `sdd-tui unpause {event.run_id}` goes on" if event.paused
                        else "training again")
        elif isinstance(event, RunEnded):
            self._stop_bar()
            if p.results:
                self.console.print(rounds_table(p.results, printable(f"{p.name} ({p.run_id})")))
                for line in phases_lines(detect_phases(p.results)):
                    self._print(line)
            self._print(f"{event.status} in {format_seconds(event.seconds)}: run {event.run_id}")

    def _epoch(self, event: EpochEnded) -> None:
        p = self.progress
        branch = "" if event.branch == "main" else f" [{event.branch}]"
        if self._bar is not None:
            self._bar.update(self._task, completed=p.fraction_done, eta=p.eta_text(),
                             description=f"round {event.round}/{event.rounds} epoch {event.epoch}/{event.epochs}{branch}")
            return
        self._print(
            f"round {event.round}/{event.rounds} epoch {event.epoch}/{event.epochs}{branch} "
            f"loss {event.train_loss:.4f} acc {_pct(event.train_acc)} test {_pct(event.test_acc)} "
            f"lr {event.lr:.4g} {event.samples_per_s:,.0f} samples/s "
            f"{p.eta_text().lower()}"
        )

    def _start_bar(self) -> None:
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                             TextColumn("{task.fields[eta]}"), console=self.console, transient=True)
        self._task = self._bar.add_task("starting", total=1.0, eta=self.progress.eta_text())
        self._bar.start()

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def hangup_safe(sink: Sink) -> Sink:
    """A sink that falls silent once its stream fails (the terminal went with SIGHUP, a closed pipe)."""
    broken = False

    def safe(event: Event) -> None:
        nonlocal broken
        if broken:
            return
        try:
            sink(event)
        except OSError:
            broken = True

    return safe


@contextlib.contextmanager
def stop_on_signals(controls: list[Control]):
    """Within the block, SIGINT/SIGTERM/SIGHUP stop every run of `controls` at its next batch; a second
    Ctrl-C raises KeyboardInterrupt (no more waiting for the batch). Under nohup SIGHUP stays ignored."""
    previous = {}

    def stop(signum, _frame):
        stopping = all(control.stop.is_set() for control in controls)
        if stopping and signum == signal.SIGINT:  # a second Ctrl-C: give up waiting for the batch
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        if stopping:  # SIGHUP then SIGTERM when a session closes: one stop is enough
            return
        for control in controls:
            control.stop.set()
        try:  # after SIGHUP the terminal may be gone
            again = "; Ctrl-C again to abort" if signum == signal.SIGINT else ""
            print(f"\nstopping after this batch ({signal.Signals(signum).name}){again}", file=sys.stderr)
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:  # nohup ignores SIGHUP: keep it so
            previous[signum] = signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_headless(config: ExperimentConfig, store: Store, preset: str | None, run_id: str | None = None,
                 resume: bool = False, recorder: StoreRecorder | None = None) -> str:
    """Run in the foreground; SIGINT/SIGTERM/SIGHUP stop at the next batch and keep finished rounds.

    `recorder` replaces the plain StoreRecorder (sweep members record their sweep too).
    """
    from sdd_tui.core.history.store import StoreRecorder
    from sdd_tui.core.runs.launch import build_run

    built = build_run(config, store.home, preset=preset, run_id=run_id, resume=resume,
                      recorder=recorder or StoreRecorder(store), sinks=[hangup_safe(HeadlessReporter())])
    try:
        with stop_on_signals([built.control]):
            return built.experiment.run()
    finally:
        built.recorder.close()


def run_cohort_headless(runs: list[tuple[ExperimentConfig, str, bool]], store: Store, preset: str | None,
                        recorder: Callable[[], StoreRecorder]) -> dict[str, str]:
    """Run (config, run id, resume) triples as one packed cohort in this process (core.runs.cohort); each run's
    lines go to its own runs/<id>/output.log, the cohort's to stdout; a run that fails also ends its log
    with `error: ...`, as a lone member's would. Returns each run's final status."""
    from sdd_tui.core.engine.device import resolve_device
    from sdd_tui.core.errors import SddError
    from sdd_tui.core.runs.cohort import Cohort
    from sdd_tui.core.runs.launch import build_run

    cohort = Cohort(say=lambda text: print(text, flush=True), threads=runs[0][0].runtime.threads)
    with contextlib.ExitStack() as logs:
        handles, streams = [], {}
        for config, run_id, resume in runs:
            log_path = store.paths(run_id).output_log
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = streams[run_id] = logs.enter_context(open(log_path, "a", encoding="utf-8"))
            handles.append(build_run(config, store.home, preset=preset, run_id=run_id, resume=resume,
                                     recorder=recorder(), branch_trainer=cohort.branch_trainer,
                                     sinks=[hangup_safe(HeadlessReporter(log, rich_progress=False))]))
        device = resolve_device(runs[0][0].runtime.device)
        print(f"cohort of {len(handles)} on {device}: " + ", ".join(h.run_id for h in handles), flush=True)
        with stop_on_signals([handle.control for handle in handles]):
            statuses = cohort.run(handles)
        for run_id, error in cohort.errors.items():
            text = str(error) if isinstance(error, SddError) else f"{type(error).__name__}: {error}"
            print(f"error: {text}", file=streams[run_id], flush=True)
            print(f"{run_id}: error: {text}", flush=True)
        return statuses
