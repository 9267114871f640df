"""Packed cohorts against member by member: the same sweep run both ways, wall times and their ratio.

    PYTHONPATH=. python benchmarks/bench_cohort.py [--case digits|lenet300] [--members N] [--rounds R]
                                                   [--epochs E] [--device cpu|cuda|auto] [--quick]
                                                   [--repeats 1] [--set section.field=value ...] [--json]

Each way is a real `sdd-tui sweep --seeds 0-(N-1)` in a fresh process against a temporary home: first
member by member (the local engine's default: one member process after another on a CPU or one GPU),
then with `--pack` (one cohort process); `--repeats` alternates the pairs, and the ratio is of the
medians. Both walls include every process start. It also compares what the two sweeps stored: each
member's test accuracy at every round, packed against alone (on the CPU they are bit for bit the same).

Cases:
- digits (default): the `digits-noise40` preset (MLP 64-300-100-10, batch 64, 100 epochs a round), 5 seeds,
  shortened to 3 rounds (`prune.rounds=2`; on a GPU 2 rounds, to stay within gpu_check's 90 s);
- lenet300: `lenet300-noise20`-shaped: LeNet-300-100 on generated MNIST-shaped data (60,000 x 1x28x28
  training samples, 10,000 test, each seed its own data), batch 128, 2 rounds x 2 epochs; for GPUs, with
  `--members 5` and `--members 10`.
`--quick` shrinks either to seconds of training (2 members, 2 short rounds) to try the script.
The last line with --json is one JSON object (benchmarks/gpu_check.py keeps it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and str(ROOT) not in sys.path:  # run from the source tree without installing it
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Case:
    preset: str
    members: int
    rounds: int  # prune.rounds: the sweep trains rounds + 1 rounds
    gpu_rounds: int  # on a GPU (within gpu_check's time limit for this section)
    epochs: int | None  # None: the preset's
    overrides: tuple[str, ...] = ()
    quick: tuple[str, ...] = field(default=())  # overrides of --quick


LENET_DATA = ("data.name='synthetic'", "data.shape=[1, 28, 28]", "data.num_classes=10", "data.download=false")
CASES = {
    "digits": Case("digits-noise40", members=5, rounds=2, gpu_rounds=1, epochs=None, quick=("prune.rounds=1", "train.epochs=2")),
    "lenet300": Case("lenet300-noise20", members=5, rounds=1, gpu_rounds=1, epochs=2,
                     overrides=(*LENET_DATA, "data.synthetic_train=60000", "data.synthetic_test=10000"),
                     quick=("data.synthetic_train=3000", "data.synthetic_test=1000", "prune.rounds=1", "train.epochs=1")),
}


def sweep_overrides(case: Case, args: argparse.Namespace, on_gpu: bool) -> list[str]:
    rounds = args.rounds if args.rounds is not None else case.gpu_rounds if on_gpu else case.rounds
    sets = [*case.overrides, f"prune.rounds={rounds}",
            f"runtime.device='{args.device}'", "runtime.checkpoint_minutes=0"]
    epochs = args.epochs or case.epochs
    if epochs:
        sets.append(f"train.epochs={epochs}")
    if args.quick:
        sets.extend(case.quick)
    merged = {item.partition("=")[0]: item for item in [*sets, *args.set]}  # a later value of a field wins
    return list(merged.values())


def run_sweep(case: Case, members: int, sets: list[str], pack: bool) -> tuple[float, dict[int, list[float]]]:
    """One sweep in a fresh process and home: (wall seconds, each seed's test accuracy by round)."""
    from sdd_tui.core.history.store import Store

    with tempfile.TemporaryDirectory(prefix="bench-cohort-") as home:
        command = [sys.executable, "-m", "sdd_tui", "sweep", "--preset", case.preset, "--seeds", f"0-{members - 1}",
                   *[part for item in sets for part in ("--set", item)], "--home", home, *(["--pack"] if pack else [])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"sweep {'--pack ' if pack else ''}exited {done.returncode}:\n{done.stdout[-2000:]}"
                             f"{done.stderr[-2000:]}")
        runs = Store(home).list_runs()
    return seconds, {r["config"]["runtime"]["seed"]: [x["test_acc"] for x in r["rounds"]] for r in runs}


def largest_gap(alone: dict[int, list[float]], packed: dict[int, list[float]]) -> float:
    """The largest test-accuracy difference (points) between a member packed and alone, over all rounds."""
    gaps = [abs(a - b) for seed in alone for a, b in zip(alone[seed], packed[seed], strict=True)]
    return round(100 * max(gaps), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="digits")
    parser.add_argument("--members", type=int, default=None, help="Seeds in the sweep (default: the case's)")
    parser.add_argument("--rounds", type=int, default=None, help="prune.rounds (default: the case's)")
    parser.add_argument("--epochs", type=int, default=None, help="train.epochs (default: the case's)")
    parser.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (runtime.device of every member)")
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: try the script in a minute")
    parser.add_argument("--repeats", type=int, default=1, help="Pairs of sweeps, alternating (default 1)")
    parser.add_argument("--set", action="append", default=[], help="Another override for both sweeps (repeatable)")
    parser.add_argument("--json", action="store_true", help="End with one JSON line")
    args = parser.parse_args()

    from sdd_tui.core.engine.openmp import set_wait_default

    set_wait_default(os.environ)  # OpenMP's wait policy before torch loads, as every sdd-tui entry point sets it
    import torch

    from sdd_tui.core.engine.bench import device_name
    from sdd_tui.core.engine.device import resolve_device

    case = CASES[args.case]
    members = args.members or (2 if args.quick else case.members)
    device = resolve_device(args.device)
    sets = sweep_overrides(case, args, device.type == "cuda")
    print(f"bench_cohort: {args.case} ({case.preset}), {members} seeds, {' '.join(sets)}; {device} "
          f"({device_name(device)}), torch {torch.__version__}", flush=True)
    alone_s, packed_s = [], []
    for repeat in range(args.repeats):
        seconds, alone = run_sweep(case, members, sets, pack=False)
        alone_s.append(seconds)
        print(f"  member by member: {seconds:7.1f} s", flush=True)
        seconds, packed = run_sweep(case, members, sets, pack=True)
        packed_s.append(seconds)
        print(f"  packed (--pack):  {seconds:7.1f} s", flush=True)
    ratio = statistics.median(alone_s) / statistics.median(packed_s)
    gap = largest_gap(alone, packed)
    print(f"speed-up {ratio:.2f}x (median of {args.repeats}); largest test-accuracy gap packed vs alone: {gap} points")
    if args.json:
        print(json.dumps({
            "case": args.case, "preset": case.preset, "members": members, "overrides": sets, "device": str(device),
            "device_name": device_name(device), "torch": torch.__version__, "repeats": args.repeats,
            "member_by_member_s": alone_s, "packed_s": packed_s, "ratio": round(ratio, 3),
            "max_test_acc_gap_pts": gap, "cpu_count": os.cpu_count(),
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}))


if __name__ == "__main__":
    main()
