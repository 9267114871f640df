"""Runs written straight into a store for the screens' tests: the issue's 6-round digits run (test accuracy
65.0-66.3%, dense 65.3%), finished or still running in this process (a `watching` dashboard mid-run)."""

from __future__ import annotations

import time

from sdd_tui.core.events import EpochEnded, RoundEnded, RoundStarted, RunStarted
from sdd_tui.core.history.store import Store, StoreRecorder

DIGITS_RUN = "20261201-101500-57fe"
DIGITS_TEST = (0.653, 0.650, 0.657, 0.663, 0.658, 0.651)  # dense first: test accuracy 65.0-66.3%
DIGITS_NAME = "digits-noise40-with-a-rather-long-name"


def digits_events(run_id: str = DIGITS_RUN, rounds_done: int = len(DIGITS_TEST)) -> list:
    """RunStarted, then per round its start, three epochs and its end, for `rounds_done` of the rounds."""
    now = time.time()
    config = {"data": {"name": "digits"}, "model": {"name": "mlp"}, "noise": {"kind": "symmetric", "rate": 0.4},
              "prune": {"rounds": len(DIGITS_TEST) - 1}, "train": {"epochs": 3}, "runtime": {"seed": 0}}
    events: list = [RunStarted(run_id=run_id, time=now, name=DIGITS_NAME, preset="digits-noise40", config=config,
                               device="cpu", rounds=len(DIGITS_TEST) - 1, epochs=3)]
    for index, test in enumerate(DIGITS_TEST[:rounds_done]):
        sparsity = 1 - 0.8**index
        events.append(RoundStarted(run_id=run_id, time=now, round=index, rounds=len(DIGITS_TEST) - 1,
                                   sparsity=sparsity, remaining=1000, epochs=3))
        for epoch in (1, 2, 3):
            events.append(EpochEnded(run_id=run_id, time=now, round=index, rounds=len(DIGITS_TEST) - 1, epoch=epoch,
                                     epochs=3, train_loss=1.0 / epoch, train_acc=0.9, test_loss=1.0,
                                     test_acc=test - 0.01 * (3 - epoch), lr=0.1, seconds=0.1, samples_per_s=1234.0))
        result = {"round": index, "sparsity": sparsity, "remaining": 1000, "test_acc": test,
                  "best_test_acc": test + 0.002, "train_acc": 0.70 + 0.01 * index, "learning_distance": 1.0 + index,
                  "seconds": 1.0}
        events.append(RoundEnded(run_id=run_id, time=now, round=index, rounds=len(DIGITS_TEST) - 1, result=result))
    return events


def write_digits_run(home, run_id: str = DIGITS_RUN, rounds_done: int = len(DIGITS_TEST)) -> Store:
    """The digits run recorded through the store's recorder, left `running` (this process's pid) unless ended."""
    store = Store(home)
    recorder = StoreRecorder(store)
    for event in digits_events(run_id, rounds_done):
        recorder(event)
    return store


def screen_text(app) -> str:
    """The characters on the app's screen now, a line per terminal row (as App.export_screenshot renders
    it, exported as text instead of SVG)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()
