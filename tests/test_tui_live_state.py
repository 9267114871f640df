"""Honest live state: pauses and hand-overs as events, progress that never moves backwards, one smoothed
ETA for the headless line and the dashboard, the latest log lines on open and resize, the system line."""

from __future__ import annotations

import io
import os
import sys

import pytest

from sdd_tui.app import SddApp
from sdd_tui.core.events import (
    EpochEnded,
    HandOverChanged,
    Message,
    PauseChanged,
    RoundEnded,
    RoundStarted,
    RunEnded,
    RunStarted,
)  # fmt: skip
from sdd_tui.core.history.store import Store, StoreRecorder
from sdd_tui.core.runs.progress import Progress
from sdd_tui.core.runs.system import SystemMonitor, SystemSample, nvml_index
from sdd_tui.headless import HeadlessReporter
from sdd_tui.runview import RunView
from sdd_tui.screens.dashboard import DashboardScreen
from sdd_tui.sources import FollowedSource
from sdd_tui.widgets.panels import EventLog, ProgressPanel, progress_text

RUN = "20990101-000000-beef"


class Clock:
    """Event times: each epoch takes `epoch_s`, each round `overhead_s` more (pruning, evaluation)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self, advance: float = 0.0) -> float:
        self.now += advance
        return self.now


def started(clock, rounds=3, epochs=4, resumed=-1, config=None) -> RunStarted:
    return RunStarted(run_id=RUN, time=clock(), name="demo", preset=None, config=config or {}, device="cpu",
                      rounds=rounds, epochs=epochs, resumed_from_round=resumed)


def round_events(clock, index, rounds=3, epochs=4, start=0, stop_after=None, epoch_s=1.0, overhead_s=0.0,
                 branch_epochs=0) -> list:
    events = [RoundStarted(run_id=RUN, time=clock(overhead_s), round=index, rounds=rounds, sparsity=1 - 0.8**index,
                           remaining=10, epochs=epochs, start_epoch=start)]
    for branch, count in (("main", epochs), ("reinit", branch_epochs)):
        first = start + 1 if branch == "main" else 1
        for epoch in range(first, count + 1):
            events.append(EpochEnded(run_id=RUN, time=clock(epoch_s), round=index, rounds=rounds, epoch=epoch,
                                     epochs=epochs, train_loss=1.0 / epoch, train_acc=0.9, test_loss=0.5,
                                     test_acc=0.5 + index / 100, lr=0.1, seconds=epoch_s, samples_per_s=100.0,
                                     branch=branch))
            if stop_after is not None and branch == "main" and epoch == stop_after:
                return events
    result = {"round": index, "sparsity": 1 - 0.8**index, "remaining": 10, "test_acc": 0.5 + index / 100,
              "best_test_acc": 0.6, "train_acc": 1.0, "seconds": 1.0}
    return events + [RoundEnded(run_id=RUN, time=clock(), round=index, rounds=rounds, result=result)]


def test_a_hand_over_reads_as_one_run_that_never_moves_backwards():
    clock = Clock()
    in_app = [started(clock), *round_events(clock, 0), *round_events(clock, 1, stop_after=2),
              HandOverChanged(run_id=RUN, time=clock(), state="requested", reason="at the next batch"),
              RunEnded(run_id=RUN, time=clock(), status="stopped"),
              HandOverChanged(run_id=RUN, time=clock(), state="spawned", pid=4242)]
    background = [started(clock, resumed=0), *round_events(clock, 1, start=2), *round_events(clock, 2),
                  *round_events(clock, 3), RunEnded(run_id=RUN, time=clock(), status="finished")]
    view = RunView(run_id=RUN)
    statuses, positions = [], []
    for event in in_app + background:
        view.apply(event)
        statuses.append(view.status)
        positions.append((view.progress.round, view.progress.fraction_done))
    assert positions == sorted(positions)  # round and fraction done never go back
    assert "handing over" in statuses and "stopped" not in statuses and statuses[-1] == "finished"
    log = [text for _, text in view.log]
    assert "handed over to process 4242" in log and "run stopped" not in log
    assert [r["round"] for r in view.results] == [0, 1, 2, 3]


def test_the_resumed_round_keeps_its_epochs_up_to_the_checkpoint():
    clock = Clock()
    view = RunView(run_id=RUN)
    for event in [started(clock), *round_events(clock, 0, stop_after=3), RunEnded(run_id=RUN, time=clock(),
                  status="stopped"), started(clock, resumed=0), *round_events(clock, 0, start=3)[:1]]:
        view.apply(event)
    assert [p.epoch for p in view.epochs] == [1, 2, 3] and view.progress.epoch == 3


def test_a_failed_hand_over_leaves_the_run_stopped():
    clock = Clock()
    progress = Progress()
    for event in [started(clock), *round_events(clock, 0, stop_after=1),
                  HandOverChanged(run_id=RUN, time=clock(), state="requested"),
                  RunEnded(run_id=RUN, time=clock(), status="stopped")]:
        progress.update(event)
    assert progress.status == "handing over"
    progress.update(HandOverChanged(run_id=RUN, time=clock(), state="failed", reason="exited with 1"))
    assert progress.status == "stopped" and not progress.handing_over


def test_pause_and_resume_events_set_the_status():
    clock = Clock()
    progress = Progress()
    progress.update(started(clock))
    progress.update(PauseChanged(run_id=RUN, time=clock(), paused=True))
    assert progress.status == "paused"
    progress.update(PauseChanged(run_id=RUN, time=clock(), paused=False))
    assert progress.status == "running"


def test_the_eta_is_the_last_whole_rounds_seconds_per_epoch():
    clock = Clock()
    progress = Progress()
    events = [started(clock, rounds=10, epochs=4)]
    for index, epoch_s in enumerate((1.0, 1.0, 2.0, 2.0, 2.0)):  # rounds 0-4; the machine got slower at round 2
        events += round_events(clock, index, rounds=10, epoch_s=epoch_s, overhead_s=0.4)
    events += round_events(clock, 5, rounds=10, epoch_s=2.0, overhead_s=0.4, stop_after=1)[:2]
    for event in events:
        progress.update(event)
    # whole rounds 2, 3 and 4 (RoundStarted to RoundStarted): 4 epochs of 2 s and 0.4 s more = 2.1 s an epoch
    assert progress.seconds_per_epoch == pytest.approx(2.1)
    assert progress.eta_round == pytest.approx(3 * 2.1)
    assert progress.eta_run == pytest.approx((3 + 5 * 4) * 2.1)


def test_the_eta_counts_the_reinit_branch_and_a_rewound_start():
    clock = Clock()
    progress = Progress()
    events = [started(clock, rounds=2, epochs=4, config={"retrain": {"compare_reinit": True}}),
              *round_events(clock, 0), *round_events(clock, 1, start=1, stop_after=2)]
    for event in events:
        progress.update(event)
    # round 1 rewinds to epoch 1: of its main epochs 2-4, 3 and 4 are left, then 4 reinit epochs;
    # round 2: 3 main epochs and 4 reinit epochs
    assert progress.epochs_left_in_round == 2 + 4 and progress.epochs_left == 6 + 7


def test_headless_and_dashboard_say_the_same_eta_for_the_same_events():
    clock = Clock()
    events = [started(clock, rounds=5, epochs=4)]
    for index in range(3):
        events += round_events(clock, index, rounds=5, epoch_s=1.5, overhead_s=0.3)
    events += round_events(clock, 3, rounds=5, epoch_s=1.5, stop_after=2)
    stream = io.StringIO()
    reporter = HeadlessReporter(stream, rich_progress=False)
    view = RunView(run_id=RUN)
    for event in events:
        reporter(event)
        view.apply(event)
    headless = stream.getvalue().strip().splitlines()[-1]
    dashboard = progress_text(view, "running", "watching").plain
    eta = view.progress.eta_text()
    assert eta.lower() in headless and eta in dashboard and "--:--" not in eta


def test_system_readings_are_numbers_or_n_a_never_errors(monkeypatch):
    here = SystemMonitor(pid=os.getpid(), device="cpu").sample()
    assert here.cpu_percent is not None and here.memory_bytes > 0 and here.gpu_percent is None
    assert "GPU n/a" in here.text() and "CPU " in here.text() and "GiB" in here.text()
    assert SystemSample().text() == "GPU n/a  CPU n/a  mem n/a"
    assert SystemMonitor(pid=2**22 + 12345, device="cuda:0").sample().cpu_percent is None  # no such process
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed: n/a
    assert SystemMonitor(pid=None, device="cuda").sample().gpu_percent is None
    assert nvml_index("cuda:1") == 1 and nvml_index("cuda") == 0 and nvml_index("cpu") is None
    assert nvml_index("cuda:1", "4,5") == 5 and nvml_index("cuda:0", "GPU-abc") is None


def write_running_run(home, lines: int = 40) -> None:
    recorder = StoreRecorder(Store(home))
    clock = Clock()
    recorder(started(clock, rounds=5))
    for index in range(3):
        events = round_events(clock, index, rounds=5)
        if index == 2:
            events = events[:3]  # round 2 under way
        for event in events:
            recorder(event)
        for line in range(lines // 3):
            recorder(Message(run_id=RUN, time=clock(), level="info", text=f"round {index} note {line} " + "x" * 30))
    recorder(Message(run_id=RUN, time=clock(), level="info", text="the latest line"))


def last_log_line(dashboard) -> str:
    log = dashboard.query_one(EventLog)
    visible = int(log.scroll_y) + log.scrollable_content_region.height
    return log.lines[visible - 1].text.strip()


@pytest.mark.slow
async def test_opening_and_resizing_show_the_latest_log_lines_and_the_current_round(home):
    write_running_run(home)
    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(RUN)
        await pilot.pause(0.5)
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        assert last_log_line(dashboard) == "the latest line"
        assert "round 2/5" in str(dashboard.query_one(ProgressPanel).render())
        for size in ((200, 60), (80, 24), (120, 40)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.5)
            assert last_log_line(dashboard) == "the latest line", size
            assert "round 2/5" in str(dashboard.query_one(ProgressPanel).render())


@pytest.mark.slow
async def test_watch_shows_paused_while_the_app_has_the_run_paused_and_the_system_line(home, smoke_config, wait_for):
    app = SddApp(store=Store(home), blink=False, start=(smoke_config("train.epochs=10000"), "smoke"))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.live is not None and len(app.live.view.epochs) >= 2, "training")
        live, dashboard = app.live, app.screen
        await wait_for(pilot, lambda: "samples/s" in str(dashboard.query_one(ProgressPanel).render()), "system line")
        panel = str(dashboard.query_one(ProgressPanel).render())
        assert "GPU n/a" in panel and "CPU " in panel and "mem " in panel  # a CPU run: no GPU to read
        await pilot.press("p")
        watcher = FollowedSource(Store(home), live.run_id)  # what `sdd-tui watch` reads, from the file alone
        app.push_screen(DashboardScreen(live.run_id, watcher))
        await pilot.pause(0.5)
        assert watcher.status == "paused" and " PAUSED " in str(app.screen.query_one(ProgressPanel).render())
        assert any("paused (between batches)" in text for _, text in watcher.view.log)
        await pilot.press("escape", "p")
        watcher.poll()
        assert watcher.status == "running" and dashboard.status == "running"
        await pilot.press("s", "y")  # the stop asks first
        await wait_for(pilot, lambda: not live.running, "the run to stop")
