"""How fast the quick commands answer: `sdd-tui --help`, `sdd-tui presets`, `sdd-tui runs`.

    python benchmarks/bench_startup.py [--repeats 5] [--sdd-tui PATH] [--json]

Runs each command as a user would (the installed `sdd-tui` script, in a fresh process, against an empty
home) `--repeats` times and prints the median wall time, with the CPU model beside it. Goal on the
2-core development machine: each at most 0.6 s. None of them may import torch, Ray, matplotlib or
scikit-learn (tests/test_packaging.py checks that part).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (["--help"], ["presets"], ["runs"])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_command(script: str, args: list[str], home: str, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([script, *args, *(["--home", home] if args == ["runs"] else [])], check=True,
                       stdout=subprocess.DEVNULL, cwd=home)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sdd-tui", default=shutil.which("sdd-tui") or str(Path(sys.executable).parent / "sdd-tui"),
                        help="The script to time (default: the one on PATH, else beside this Python)")
    parser.add_argument("--json", action="store_true", help="Print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        results = {" ".join(command): time_command(args.sdd_tui, command, home, args.repeats) for command in COMMANDS}
    medians = {command: statistics.median(seconds) for command, seconds in results.items()}
    if args.json:
        print(json.dumps({"cpu": cpu_model(), "repeats": args.repeats, "median_s": medians, "all_s": results}))
        return
    print(f"sdd-tui start-up, median of {args.repeats} runs each ({cpu_model()}, {args.sdd_tui})")
    for command, median in medians.items():
        print(f"  sdd-tui {command:<8} {median:6.3f} s   (min {min(results[command]):.3f}, "
              f"max {max(results[command]):.3f})")


if __name__ == "__main__":
    main()
