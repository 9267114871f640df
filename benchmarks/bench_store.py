"""Run history at scale: recording a round, `sdd-tui runs`, `runs show` and the app's history screen,
with N runs in the store.

Not a test. Run from the repository root:
    python benchmarks/bench_store.py --runs 10000 [--home DIR] [--json]

The store is built through the project's own API (`Store.import_runs`, the bulk path a first-format
store's conversion uses) from records shaped like a real digits-noise40 run: its validated config
(noise rate, retrain mode and seed varied), 31 rounds with every metric a run records, provenance,
tags on some runs. A `--home` that already holds N runs is reused. Then:

- add_round_ms: a new run recorded through StoreRecorder as the engine does it (RunStarted, 31
  RoundEnded, RunEnded); the median and the slowest RoundEnded (a round's end, in the training thread);
- runs_s / where_s / show_s: wall time of `python -m sdd_tui runs` (all N, to /dev/null), `runs --where
  noise.rate=0.4 --where retrain.mode=rewind --status finished --tag paper`, and `runs show ID`: a
  fresh process each, Python's start-up included, the median of 3;
- history_open_s: the app (App.run_test, 160x50, in a fresh process as a user starts it) opens its
  history screen on N runs, until the table has drawn its first rows; history_s: that, then 5
  page-downs and End, until the screen has settled; history_empty_*: the same on an empty home (what
  Textual itself costs, with no run to show);
- startup_s: `python -m sdd_tui --version` (what any command costs before it reads the store).
Each figure comes with its CPU time (`*_cpu_s`: user + system of the process), which moves far less
than wall time when other jobs share the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and str(ROOT) not in sys.path:  # run as a script: the source tree it sits in
    sys.path.insert(0, str(ROOT))

ROUNDS = 30  # digits-noise40: 30 pruning rounds after the dense one
WEIGHTS = 50_200


def base_config() -> dict:
    from sdd_tui.core.config import resolve_config

    return resolve_config("digits-noise40").model_dump(mode="json")


def rounds_like_digits(rng: random.Random) -> list[dict]:
    """31 rounds with the metrics (and the shape of the curve) of a digits-noise40 run."""
    rounds = []
    for r in range(ROUNDS + 1):
        remaining = round(WEIGHTS * 0.8 ** r)
        bump = 0.12 * math.exp(-((r - 8) / 5) ** 2) - (0.5 if r > 26 else 0.0)
        acc = min(0.99, max(0.1, 0.72 + bump + rng.gauss(0, 0.01)))
        rounds.append({
            "round": r, "sparsity": 1 - remaining / WEIGHTS, "remaining": remaining, "total": WEIGHTS,
            "test_acc": acc, "test_loss": 1.5 - acc + rng.random() * 0.1, "best_test_acc": acc + 0.01,
            "best_epoch": rng.randint(1, 100), "train_acc": max(0.1, 1.0 - r * 0.02), "train_loss": 0.01 * r,
            "noisy_memorized": max(0.0, 1.0 - r * 0.04), "noisy_true_acc": min(0.9, r * 0.03),
            "learning_distance": 3.7 + r * 0.8 + rng.random(), "seconds": 1.4 + rng.random() * 0.2,
        })
    return rounds


def realistic_records(count: int, start: int, total: int) -> list[dict]:
    """Records `start` to `start + count` of `total`, a minute apart, the last one starting now."""
    from sdd_tui.core import provenance

    config, origin, rng = base_config(), provenance.collect(ROOT), random.Random(start)
    now = time.time() - total * 60
    records = []
    for index in range(start, start + count):
        run_config = json.loads(json.dumps(config))
        run_config["noise"]["rate"] = (0.2, 0.4, 0.6, 0.8)[index % 4]
        run_config["retrain"]["mode"] = ("rewind", "finetune")[index // 4 % 2]
        run_config["runtime"]["seed"] = index // 8 % 5
        started = now + index * 60
        records.append({
            "id": f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{index:05x}", "name": "digits-noise40",
            "preset": "digits-noise40", "config": run_config, "status": "finished" if index % 10 else "stopped",
            "host": origin["host"], "pid": 1000 + index, "device": "cpu", "versions": {"python": origin["python"],
            "torch": origin["torch"], "torchvision": origin["torchvision"]}, "provenance": origin,
            "started": started, "ended": started + 50, "error": "", "tags": ["paper"] if index % 3 == 0 else [],
            "note": "" if index % 7 else "first try\nsecond line", "rounds": rounds_like_digits(rng),
        })
    return records


def build(home: Path, count: int) -> float:
    from sdd_tui.core.history.store import Store

    store = Store(home)
    have = len(store.summaries())
    started = time.perf_counter()
    for first in range(have, count, 2000):  # batches keep memory flat at 10,000 runs
        store.import_runs(realistic_records(min(2000, count - first), first, count))
    return time.perf_counter() - started


def record_one_run(home: Path) -> dict[str, float]:
    """Milliseconds of RunStarted, each RoundEnded, RunEnded through StoreRecorder (as the engine emits them)."""
    from sdd_tui.core import provenance
    from sdd_tui.core.events import RoundEnded, RunEnded, RunStarted
    from sdd_tui.core.history.store import Store, StoreRecorder

    recorder, run_id = StoreRecorder(Store(home)), f"bench-{os.getpid()}-{time.time_ns()}"
    started = RunStarted(run_id=run_id, time=time.time(), name="bench", preset="digits-noise40", config=base_config(),
                         device="cpu", rounds=ROUNDS, epochs=100, provenance=provenance.collect(ROOT))
    clock = time.perf_counter
    begin = clock()
    recorder(started)
    start_ms = 1000 * (clock() - begin)
    rounds_ms = []
    for result in rounds_like_digits(random.Random(1)):
        begin = clock()
        recorder(RoundEnded(run_id=run_id, time=time.time(), round=result["round"], rounds=ROUNDS, result=result))
        rounds_ms.append(1000 * (clock() - begin))
    begin = clock()
    recorder(RunEnded(run_id=run_id, time=time.time(), status="finished"))
    end_ms = 1000 * (clock() - begin)
    return {"add_round_ms": statistics.median(rounds_ms), "add_round_max_ms": max(rounds_ms),
            "run_start_ms": start_ms, "run_end_ms": end_ms}


def command_seconds(home: Path, *args: str, repeats: int = 3) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds: user + system) of `python -m sdd_tui ARGS --home HOME`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        begin = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "sdd_tui", *args, "--home", str(home)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        walls.append(time.perf_counter() - begin)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"sdd-tui {' '.join(args)} failed: {done.stderr.strip()}")
    return statistics.median(walls), statistics.median(cpus)


async def history_seconds(home: Path, pages: int = 5) -> dict[str, tuple[float, float]]:
    """{"open": (wall, CPU seconds) until the table has drawn its first rows, "scroll": (wall, CPU) of
    open + pages + End}."""
    from sdd_tui.app import SddApp
    from sdd_tui.core.history.store import Store
    from sdd_tui.screens.history import HistoryScreen
    from sdd_tui.widgets.runs_table import RunsTable

    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        begin, cpu = time.perf_counter(), time.process_time()
        app.push_screen(HistoryScreen())
        await pilot.pause()
        while not (isinstance(app.screen, HistoryScreen) and app.screen.query(RunsTable)
                   and (app.screen.query_one(RunsTable).drawn_rows or not app.screen.query_one(RunsTable).row_count)):
            await pilot.pause(0.005)
        opened = time.perf_counter() - begin, time.process_time() - cpu
        for _ in range(pages):
            await pilot.press("pagedown")
        await pilot.press("end")
        await pilot.pause()
        return {"open": opened, "scroll": (time.perf_counter() - begin, time.process_time() - cpu)}


def history_in_a_fresh_process(home: Path) -> dict[str, tuple[float, float]]:
    """history_seconds in a new process, as a user opens the app (this one holds the built store)."""
    done = subprocess.run([sys.executable, __file__, "--history-of", str(home)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the history measurement failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def machine() -> dict[str, object]:
    from sdd_tui.core.provenance import cpu_model

    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "load_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version()}


def measure(home: Path, count: int) -> dict[str, object]:
    from sdd_tui.core.history.store import Store

    figures: dict[str, object] = {"runs": count, "build_s": round(build(home, count), 1)}
    figures.update({k: round(v, 2) for k, v in record_one_run(home).items()})
    some_id = Store(home).summaries()[count // 2]["id"]
    where = ["--where", "noise.rate=0.4", "--where", "retrain.mode=rewind", "--status", "finished", "--tag", "paper"]
    timed = {"runs": command_seconds(home, "runs"), "where": command_seconds(home, "runs", *where),
             "show": command_seconds(home, "runs", "show", some_id), "startup": command_seconds(home, "--version")}
    history = history_in_a_fresh_process(home)
    timed.update(history_open=history["open"], history=history["scroll"])
    with tempfile.TemporaryDirectory(prefix="sdd-bench-empty-") as empty:
        empty_history = history_in_a_fresh_process(Path(empty))
    timed.update(history_empty_open=empty_history["open"], history_empty=empty_history["scroll"])
    for name, (wall, cpu) in timed.items():
        figures[f"{name}_s"], figures[f"{name}_cpu_s"] = round(wall, 3), round(cpu, 3)
    figures["store_json_mb"] = round((home / "store.json").stat().st_size / 1e6, 2)
    return {**figures, **machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="Runs in the store (default 1000)")
    parser.add_argument("--home", type=Path, help="Store home to build (or reuse); default: a temporary one")
    parser.add_argument("--json", action="store_true", help="Print one JSON object")
    parser.add_argument("--history-of", type=Path, help=argparse.SUPPRESS)  # the history figures of one home
    args = parser.parse_args()
    if args.history_of:
        print(json.dumps(asyncio.run(history_seconds(args.history_of))))
        return
    if args.home:
        figures = measure(args.home, args.runs)
    else:
        with tempfile.TemporaryDirectory(prefix="sdd-bench-store-") as home:
            figures = measure(Path(home), args.runs)
    if args.json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        print(f"{key:>18}: {value}")


if __name__ == "__main__":
    main()
