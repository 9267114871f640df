"""Training inside the app vs headless on the same preset: wall time of each and their ratio.

Not a test. Run from the repository root:
    PYTHONPATH=. python benchmarks/bench_tui.py [--repeats 3] [--size 120x40] [--set train.epochs=30 ...]

Both sides run the same Experiment with a StoreRecorder in a temporary home; headless adds the
line reporter (to /dev/null), the app adds its thread worker, messages and a dashboard redrawing
its charts. Runs alternate (headless, app, headless, ...) after one warm-up of each, and the time
is the engine's own (RunEnded.seconds, from the start of Experiment.run to its end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

DEFAULT_SETTINGS = ["train.epochs=80", "prune.rounds=5", "data.synthetic_train=2048", "data.synthetic_test=512",
                    "model.hidden=[128, 64]"]


def headless_seconds(config, preset: str) -> float:
    from sdd_tui.core.events import RunEnded
    from sdd_tui.core.runs.launch import build_run
    from sdd_tui.headless import HeadlessReporter

    ended = []
    with tempfile.TemporaryDirectory() as home, open(os.devnull, "w") as devnull:
        sinks = [HeadlessReporter(stream=devnull, rich_progress=False),
                 lambda e: ended.append(e) if isinstance(e, RunEnded) else None]
        build_run(config, home, preset=preset, sinks=sinks).run()
    return ended[-1].seconds


async def key_latency(config, preset: str, presses: int = 30) -> list[float]:
    """Seconds from a key event posted to the app until its action runs, while the run trains (100x30)."""
    from sdd_tui.app import SddApp
    from sdd_tui.core.history.store import Store

    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        app = SddApp(store=Store(home), start=(config, preset), blink=False)
        async with app.run_test(size=(100, 30)) as pilot:
            live, dashboard = app.live, app.screen
            handled: list[float] = []
            cycle_chart = dashboard.action_next_chart
            dashboard.action_next_chart = lambda: (handled.append(time.perf_counter()), cycle_chart())
            while not live.view.epochs:
                await pilot.pause(0.05)
            while live.running and len(latencies) < presses:
                posted = time.perf_counter()
                app.simulate_key("v")
                while len(handled) == len(latencies):
                    await asyncio.sleep(0.001)
                latencies.append(handled[-1] - posted)
                await asyncio.sleep(0.1)
            live.stop()
            while live.running:
                await pilot.pause(0.05)
    return latencies


async def app_seconds(config, preset: str, size: tuple[int, int]) -> tuple[float, float]:
    """The run's engine seconds in the app, and the CPU seconds of the UI (main) thread, start to exit."""
    from sdd_tui.app import SddApp
    from sdd_tui.core.history.store import Store

    ui_started = time.thread_time()  # every GIL-holding millisecond of the UI is one training waits for
    with tempfile.TemporaryDirectory() as home:
        app = SddApp(store=Store(home), start=(config, preset), blink=False)
        async with app.run_test(size=size) as pilot:
            live = app.live
            while live.running or live.view.status in ("starting", "running"):
                await asyncio.sleep(0.25)  # the benchmark itself should not wake the app often
            await pilot.pause(0.3)
            if live.view.status != "finished":
                raise SystemExit(f"the in-app run ended {live.view.status}: {live.view.error}")
            return live.view.seconds, time.thread_time() - ui_started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--set", dest="overrides", action="append", default=None,
                        help=f"config override (default: {' '.join(DEFAULT_SETTINGS)})")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="120x40", help="terminal size of the app, WxH")
    args = parser.parse_args()

    from sdd_tui.core.config import resolve_config

    # The same explicit thread count on both sides (the app picks cores - 1 when none is given).
    threads = f"runtime.threads={os.environ.get('BENCH_THREADS', max(1, (os.cpu_count() or 2) - 1))}"
    config = resolve_config(args.preset, overrides=[*(args.overrides or DEFAULT_SETTINGS), threads])
    size = tuple(int(v) for v in args.size.split("x"))
    print(f"preset {args.preset} with {' '.join(args.overrides or DEFAULT_SETTINGS)} {threads}; app at {args.size}; "
          f"{args.repeats} repeats after a warm-up")
    headless_seconds(config, args.preset)
    asyncio.run(app_seconds(config, args.preset, size))
    headless, in_app, ui_cpu = [], [], []
    for repeat in range(args.repeats):
        headless.append(headless_seconds(config, args.preset))
        seconds, ui_seconds = asyncio.run(app_seconds(config, args.preset, size))
        in_app.append(seconds)
        ui_cpu.append(ui_seconds)
        print(f"  repeat {repeat + 1}: headless {headless[-1]:.2f}s  app {in_app[-1]:.2f}s  "
              f"(UI thread CPU {ui_cpu[-1]:.2f}s, app start to exit)")
    h, a = statistics.median(headless), statistics.median(in_app)
    print(f"headless median {h:.2f}s (min {min(headless):.2f}s)")
    print(f"in app   median {a:.2f}s (min {min(in_app):.2f}s)")
    print(f"ratio app/headless: median {a / h:.3f}, min/min {min(in_app) / min(headless):.3f}")
    latencies = asyncio.run(key_latency(config, args.preset))
    if latencies:
        p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
        print(f"key to action while training: median {1000 * statistics.median(latencies):.1f} ms, "
              f"95th percentile {1000 * p95:.1f} ms, max {1000 * max(latencies):.1f} ms over {len(latencies)} keys")
    print(f"(measured {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    from sdd_tui.core.engine.openmp import set_wait_default

    set_wait_default(os.environ)  # before torch loads, as sdd_tui.cli.main does for the headless runs compared
    main()
