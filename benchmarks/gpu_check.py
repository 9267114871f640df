"""GPU truth in one short call: speed against the standard recipe, and whether the fast path is right.

Not a test. Run from the repository root (the GPU machine: docs/PERFORMANCE.md, "GPU check"):
    PYTHONPATH=. python3 benchmarks/gpu_check.py --out DIR [--device auto|cuda|cpu] [--quick]
                                                 [--budget SECONDS] [--only SECTION,PREFIX*,...]

Sections, in this order (the costly compiled benches last, so that a short lease keeps the rest):
- environment: the card, driver, torch, CUDA and cuDNN versions;
- bench/<model>-<data>: sdd_tui.core.engine.bench.run_bench for resnet18 and vgg16 on CIFAR-10-shaped data and
  lenet300_100 on MNIST-shaped data: samples/s of both loops, their ratio, seconds per epoch with
  evaluation and the full-preset estimate; then the same with torch.compile (".../compile");
- correctness: one short ResNet-18 run (generated CIFAR-shaped data, a dense round and one pruning
  round) on the fast path and with runtime.fast=false from the same seed: how far the masks agree,
  the accuracy gaps, and whether every pruned weight is exactly zero after training;
- bf16_vs_fp32: the same run on the fast path without autocast: the accuracy gaps bf16 causes;
- cohort: benchmarks/bench_cohort.py when it exists (run as a child process), else "absent".

Each section runs under its own time limit and the total budget; one that fails or overruns is
recorded with its error and the next one runs. Each records its seconds and peak GPU memory (in the
two run sections, since its last run started; each run lists its own). DIR/gpu_check.json is
rewritten after every section, so a run killed from outside still leaves what it measured; a short
table is printed last. The exit status is 1 when a section failed or overran.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROCESS_STARTED = time.monotonic()  # the budget counts torch's import too when run as a script
ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and str(ROOT) not in sys.path:  # the source tree on the GPU machine, no PYTHONPATH
    sys.path.insert(0, str(ROOT))  # (imported by a test, it must use the installed package instead)

from sdd_tui.core.engine.openmp import set_wait_default  # noqa: E402

if __name__ == "__main__":  # a program of its own: OpenMP's wait policy before torch loads, as sdd_tui.cli.main
    set_wait_default(os.environ)

SCHEMA = 1
BENCH_CASES = (("resnet18", "cifar10"), ("vgg16", "cifar10"), ("lenet300_100", "mnist"))
COHORT_SCRIPT = ROOT / "benchmarks" / "bench_cohort.py"
MIB = 2**20


@dataclass(frozen=True)
class Sizes:
    """How big each section's work is: the GPU's sizes, or tiny ones (--quick) to try the script on a CPU."""

    bench_batches: int
    bench_batch_size: int
    bench_width: float
    run_width: float
    run_train: int  # generated training samples of the correctness run
    run_test: int
    run_epochs: int  # per round: a dense round and one pruning round
    run_batch_size: int
    run_rewind: int  # the preset rewinds to iteration 1000 of 78,000; here to a point inside the dense round
    eval_batch_size: int
    compile_cases: tuple[str, ...]  # the models whose compiled bench runs
    limits: dict[str, float]  # seconds: one section's time limit, by kind
    min_start: dict[str, float]  # seconds of budget a section needs left to start at all


FULL = Sizes(bench_batches=200, bench_batch_size=128, bench_width=1.0, run_width=1.0, run_train=12_800,
             run_test=2_000, run_epochs=2, run_batch_size=128, run_rewind=100, eval_batch_size=1024,
             compile_cases=tuple(model for model, _ in BENCH_CASES),
             limits={"environment": 30, "bench": 75, "bench_compile": 150, "correctness": 150,
                     "bf16_vs_fp32": 90, "cohort": 90},
             min_start={"environment": 0, "bench": 15, "bench_compile": 45, "correctness": 45,
                        "bf16_vs_fp32": 15, "cohort": 20})
# inductor's C++ build of a CNN takes minutes on a small CPU: --quick compiles the MLP only
QUICK = Sizes(bench_batches=3, bench_batch_size=16, bench_width=0.125, run_width=0.125, run_train=256,
              run_test=128, run_epochs=1, run_batch_size=64, run_rewind=2, eval_batch_size=128,
              compile_cases=("lenet300_100",),
              limits={"environment": 30, "bench": 60, "bench_compile": 120, "correctness": 120,
                      "bf16_vs_fp32": 60, "cohort": 60},
              min_start={kind: 0 for kind in ("environment", "bench", "bench_compile", "correctness",
                                              "bf16_vs_fp32", "cohort")})


# ---------------------------------------------------------------------------- time boxes


class SectionTimeout(BaseException):
    """Raised in the main thread when a section overruns (a BaseException: no `except Exception` eats it)."""


@contextlib.contextmanager
def time_box(seconds: float):
    """Raise SectionTimeout in this (main) thread after `seconds`; torch returns to Python between ops."""

    def expire(signum, frame):
        raise SectionTimeout(f"over its {seconds:.0f} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _cuda(device: str) -> bool:
    return device.startswith("cuda")


def _reset_peak(device: str) -> None:
    import torch

    if _cuda(device):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: str) -> dict[str, float] | None:
    """Peak GPU memory since the last reset, in MiB: what tensors held, and what the allocator reserved."""
    import torch

    if not _cuda(device):
        return None
    return {"allocated_mib": round(torch.cuda.max_memory_allocated() / MIB, 1),
            "reserved_mib": round(torch.cuda.max_memory_reserved() / MIB, 1)}


class Check:
    """The report being built: sections run one by one, each failure-isolated, the file rewritten after each."""

    def __init__(self, out: Path, device: str, sizes: Sizes, budget: float, quick: bool, argv: list[str],
                 started: float | None = None):
        self.out, self.device, self.sizes, self.budget = out, device, sizes, budget
        self.started = time.monotonic() if started is None else started
        self.report: dict[str, Any] = {
            "tool": "benchmarks/gpu_check.py", "schema": SCHEMA, "started_utc": _utc_now(), "finished_utc": None,
            "elapsed_s": None, "budget_s": budget, "quick": quick, "device": device, "argv": argv,
            "sections": {}, "summary": [],
        }

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def run(self, name: str, kind: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one section within min(its limit, the budget left); record ok, error, timeout or skipped."""
        left = self.left()
        if left < max(self.sizes.min_start[kind], 1.0):
            entry = {"status": "skipped", "error": f"budget: {left:.0f} s left, the section needs "
                                                  f"{self.sizes.min_start[kind]:.0f} s to start"}
        else:
            entry = self._timed(work, min(self.sizes.limits[kind], left))
        self.report["sections"][name] = entry
        self.write()
        print(f"[{time.monotonic() - self.started:6.1f} s] {name}: {entry['status']}"
              + (f" ({entry['error']})" if entry.get("error") else ""), flush=True)
        return entry

    def _timed(self, work: Callable[[], dict[str, Any]], limit: float) -> dict[str, Any]:
        _reset_peak(self.device)
        started = time.monotonic()
        entry: dict[str, Any] = {"status": "ok", "limit_s": round(limit, 1)}
        try:
            with time_box(limit):
                entry["result"] = work()
        except SectionTimeout as timeout:
            entry.update(status="timeout", error=str(timeout))
        except Exception as error:  # noqa: BLE001  (a broken section must not cost the others)
            entry.update(status="error", error=f"{type(error).__name__}: {error}"[:500],
                         traceback=traceback.format_exc().splitlines()[-12:])
        entry["seconds"] = round(time.monotonic() - started, 2)
        try:
            entry["peak_gpu"] = _peak(self.device)
        except Exception as error:  # noqa: BLE001  (after a CUDA fault even this may fail)
            entry["peak_gpu"] = f"unreadable: {type(error).__name__}"
        return entry

    def write(self) -> None:
        self.report["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.out.mkdir(parents=True, exist_ok=True)
        partial = self.out / "gpu_check.json.tmp"
        partial.write_text(json.dumps(_finite(self.report), indent=1, allow_nan=False) + "\n", encoding="utf-8")
        partial.replace(self.out / "gpu_check.json")


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finite(value: Any) -> Any:
    """The report as strict JSON: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


# ---------------------------------------------------------------------------- environment


def environment(device: str) -> dict[str, Any]:
    import torch
    import torchvision

    from sdd_tui.core.engine.bench import device_name

    found: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
        else None, "cpu": device_name(torch.device("cpu")), "torch_threads": torch.get_num_threads(),
        "omp_env": {key: os.environ.get(key) for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "source": _source_revision(),
    }
    if _cuda(device):
        props = torch.cuda.get_device_properties(torch.device(device))
        found.update(card=props.name, capability=f"{props.major}.{props.minor}",
                     memory_gib=round(props.total_memory / 2**30, 1), multiprocessors=props.multi_processor_count,
                     bf16=torch.cuda.is_bf16_supported(), nvidia_smi=_nvidia_smi())
    return found


def environment_line(name: str, result: dict[str, Any]) -> str:
    smi = result.get("nvidia_smi")
    driver = smi.get("driver_version", "-") if isinstance(smi, dict) else "-"
    return (f"{name:<34} {result.get('card', result['cpu'])}, driver {driver}, torch {result['torch']}, "
            f"CUDA {result['cuda']}, cuDNN {result['cudnn']}")


def _nvidia_smi() -> dict[str, str] | str:
    """The card as nvidia-smi reads it; the short query again if a field of the long one is unknown there."""
    error: Exception | None = None
    for fields in ("name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit", "name,driver_version"):
        try:
            line = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=20, check=True).stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError) as failed:
            error = failed
            continue
        return dict(zip(fields.split(","), (part.strip() for part in line.split(","))))
    return f"unavailable: {type(error).__name__}"


def _source_revision() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None  # the GPU machine gets a copy of the working tree, maybe without .git


# ---------------------------------------------------------------------------- bench


def bench(model: str, data: str, device: str, sizes: Sizes, compile_model: bool) -> dict[str, Any]:
    from sdd_tui.core.engine.bench import run_bench

    if compile_model:
        import torch._dynamo

        torch._dynamo.reset()  # each compiled bench starts from empty caches, as a fresh run does
    result = run_bench(model, data, device, batches=sizes.bench_batches, batch_size=sizes.bench_batch_size,
                       width=sizes.bench_width, compile_model=compile_model)
    return result.to_dict()


def bench_line(name: str, result: dict[str, Any]) -> str:
    from sdd_tui.core.format import duration

    return (f"{name:<34} project {result['project_samples_per_s']:>9,.0f}/s  reference "
            f"{result['reference_samples_per_s']:>8,.0f}/s  {result['ratio']:5.1f}x  epoch+eval "
            f"{result['project_epoch_s']:8.2f} s  full run {duration(result['project_full_run_with_eval_s'])}")


# ---------------------------------------------------------------------------- correctness runs


def run_config(device: str, sizes: Sizes, fast: bool, amp: bool = True):
    """The resnet18-noise20 recipe, shrunk: generated CIFAR-shaped data, two short rounds, the same seed."""
    from sdd_tui.core.config import resolve_config

    return resolve_config("resnet18-noise20", overrides=[
        "data.name='synthetic'", "data.shape=[3, 32, 32]", "data.num_classes=10", "data.download=false",
        f"data.synthetic_train={sizes.run_train}", f"data.synthetic_test={sizes.run_test}",
        f"model.width={sizes.run_width}", f"train.epochs={sizes.run_epochs}", "train.milestones=[]",
        f"train.batch_size={sizes.run_batch_size}", f"train.eval_batch_size={sizes.eval_batch_size}",
        "prune.rounds=1", f"retrain.rewind_iteration={sizes.run_rewind}", f"runtime.device='{device}'",
        "runtime.seed=0", f"runtime.fast={str(fast).lower()}", f"runtime.amp={str(amp).lower()}",
        "runtime.checkpoint_minutes=0"])


def short_run(device: str, sizes: Sizes, variant: str) -> dict[str, Any]:
    """One run of `variant` (fast | slow | fast_fp32): its rounds, masks and speed; masks kept for comparing."""
    import torch

    from sdd_tui.core.engine.experiment import Experiment
    from sdd_tui.core.events import EpochEnded, RoundEnded, RunEnded
    from sdd_tui.core.paths import RunPaths

    torch.backends.cudnn.benchmark = False  # the fast Trainer turns it on process-wide: each run starts as new
    _reset_peak(device)
    events: list = []
    with tempfile.TemporaryDirectory() as home:
        config = run_config(device, sizes, fast=variant != "slow", amp=variant != "fast_fp32")
        experiment = Experiment(config, events.append, Path(home))
        status = experiment.run()
        saved = torch.load(RunPaths(Path(home), experiment.run_id).round_file(1), map_location="cpu",
                           weights_only=False)
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    rounds = [e.result for e in events if isinstance(e, RoundEnded)]
    return {
        "variant": variant, "status": status, "amp": _amp_name(device, variant),
        "seconds": next(e.seconds for e in events if isinstance(e, RunEnded)),
        "steps": len(epochs) * -(-sizes.run_train // sizes.run_batch_size),
        "epoch_seconds": [round(e.seconds, 3) for e in epochs],
        "median_samples_per_s": statistics.median(e.samples_per_s for e in epochs),
        "rounds": [{key: r.get(key) for key in ("round", "sparsity", "test_acc", "test_loss", "train_acc",
                                               "noisy_memorized", "noisy_true_acc")} for r in rounds],
        "pruned_nonzero": _pruned_nonzero(saved["model"], saved["masks"]),
        "peak_gpu": _peak(device), "_masks": saved["masks"],
    }


def _amp_name(device: str, variant: str) -> str:
    """The precision `variant` trains in: the fast path's own decision (sdd_tui.core.engine.runtime_choices)."""
    import torch

    from sdd_tui.core.engine.runtime_choices import RuntimeChoices

    dtype = RuntimeChoices.for_device(torch.device(device), fast=variant != "slow", amp=variant == "fast").amp_dtype
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


def _pruned_nonzero(weights: dict, masks: dict) -> int:
    """Weights that a mask prunes but that are not exactly 0 after training (the masks' promise: none)."""
    return int(sum(int((weights[name][~mask] != 0).sum()) for name, mask in masks.items()))


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """How far two runs agree: masks entry by entry and on the pruned set, accuracies in points."""
    total = sum(mask.numel() for mask in a["_masks"].values())
    equal = sum(int((a["_masks"][name] == b["_masks"][name]).sum()) for name in a["_masks"])
    pruned_a = sum(int((~mask).sum()) for mask in a["_masks"].values())
    both = sum(int((~a["_masks"][name] & ~b["_masks"][name]).sum()) for name in a["_masks"])
    last_a, last_b = a["rounds"][-1], b["rounds"][-1]

    def gap(key: str) -> float | None:
        if last_a.get(key) is None or last_b.get(key) is None:
            return None
        return round(100 * (last_a[key] - last_b[key]), 2)

    return {
        "masks_equal": equal / total, "pruned_overlap": both / pruned_a if pruned_a else None,
        "test_acc_gap_pts": gap("test_acc"), "train_acc_gap_pts": gap("train_acc"),
        "noisy_memorized_gap_pts": gap("noisy_memorized"),
        "max_round_test_acc_gap_pts": round(100 * max(abs(x["test_acc"] - y["test_acc"])
                                                      for x, y in zip(a["rounds"], b["rounds"])), 2),
    }


def _public(run: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in run.items() if not key.startswith("_")}


class ShortRuns:
    """The correctness runs, each done once: the fast one serves both comparisons."""

    def __init__(self, device: str, sizes: Sizes):
        self.device, self.sizes, self.done = device, sizes, {}

    def get(self, variant: str) -> dict[str, Any]:
        if variant not in self.done:
            self.done[variant] = short_run(self.device, self.sizes, variant)
        return self.done[variant]

    def compare(self, first: str, second: str) -> dict[str, Any]:
        a, b = self.get(first), self.get(second)
        return {"runs": {first: _public(a), second: _public(b)}, f"{first}_vs_{second}": compare_runs(a, b),
                "pruned_weights_zero": a["pruned_nonzero"] == 0 and b["pruned_nonzero"] == 0}


def runs_line(name: str, result: dict[str, Any]) -> str:
    (key, comparison), = ((k, v) for k, v in result.items() if "_vs_" in k)
    return (f"{name:<34} {key}: masks equal {100 * comparison['masks_equal']:.2f}%, test acc gap "
            f"{comparison['test_acc_gap_pts']} pts, train acc gap {comparison['train_acc_gap_pts']} pts, noisy "
            f"memorised gap {comparison['noisy_memorized_gap_pts']} pts, pruned weights exactly 0: "
            f"{result['pruned_weights_zero']}")


# ---------------------------------------------------------------------------- cohort


COHORT_PEAK = "gpu_check: peak_gpu_allocated_mib="
# runs the script as __main__ and prints the child's peak GPU memory at its end, however it ends
COHORT_WRAPPER = f"""
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    torch = sys.modules.get("torch")  # a script that never loaded torch used no GPU memory
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        print("{COHORT_PEAK}" + str(round(torch.cuda.max_memory_allocated() / 2**20, 1)), flush=True)
"""


def cohort(device: str, quick: bool, limit: float) -> dict[str, Any]:
    """benchmarks/bench_cohort.py as a child process (its own time limit); 'absent' while it does not exist.

    It gets `--device DEVICE`, `--quick` and `--json` where its source mentions those options; a last
    stdout line that parses as JSON is kept as its result."""
    if not COHORT_SCRIPT.exists():
        return {"present": False, "status": "absent"}
    source = COHORT_SCRIPT.read_text(encoding="utf-8")
    args = [*(["--device", device] if "--device" in source else []), *(["--quick"] if quick and "--quick" in source
                                                                        else []),
            *(["--json"] if "--json" in source else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-c", COHORT_WRAPPER, str(COHORT_SCRIPT), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=max(limit - 5, 1))
    except subprocess.TimeoutExpired as expired:
        raise RuntimeError(f"bench_cohort.py ran past {expired.timeout:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    peak = next((float(line[len(COHORT_PEAK):]) for line in lines if line.startswith(COHORT_PEAK)), None)
    output = [line for line in lines if not line.startswith(COHORT_PEAK)]
    result: dict[str, Any] = {"present": True, "args": args, "returncode": done.returncode,
                              "peak_gpu_allocated_mib": peak, "stdout_tail": output[-20:],
                              "stderr_tail": done.stderr.strip().splitlines()[-20:]}
    with contextlib.suppress(json.JSONDecodeError, IndexError):
        result["json"] = json.loads(output[-1])
    if done.returncode != 0:
        raise RuntimeError(f"bench_cohort.py exited {done.returncode}: {' | '.join(result['stderr_tail'][-3:])}")
    return result


# ---------------------------------------------------------------------------- the whole check


def sections(check: Check, quick: bool) -> list[tuple[str, str, Callable[[], dict[str, Any]]]]:
    """(name, kind, work) in running order: what matters most first, the compiled benches last."""
    device, sizes = check.device, check.sizes
    runs = ShortRuns(device, sizes)
    plan: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
        ("environment", "environment", lambda: environment(device))]
    for model, data in BENCH_CASES:
        plan.append((f"bench/{model}-{data}", "bench", lambda m=model, d=data: bench(m, d, device, sizes, False)))
    plan.append(("correctness", "correctness", lambda: runs.compare("fast", "slow")))
    plan.append(("bf16_vs_fp32", "bf16_vs_fp32", lambda: runs.compare("fast", "fast_fp32")))
    plan.append(("cohort", "cohort", lambda: cohort(device, quick, min(sizes.limits["cohort"], check.left()))))
    for model, data in BENCH_CASES:
        name = f"bench/{model}-{data}/compile"
        if model in sizes.compile_cases:
            plan.append((name, "bench_compile", lambda m=model, d=data: bench(m, d, device, sizes, True)))
        else:
            plan.append((name, "skipped", lambda: {}))
    return plan


def summary(report: dict[str, Any]) -> list[str]:
    lines = []
    for name, entry in report["sections"].items():
        result = entry.get("result")
        if entry["status"] != "ok" or result is None:
            lines.append(f"{name:<34} {entry['status']}: {entry.get('error', '')}")
        elif name == "environment":
            lines.append(environment_line(name, result))
        elif name.startswith("bench/"):
            lines.append(bench_line(name, result))
        elif name in ("correctness", "bf16_vs_fp32"):
            lines.append(runs_line(name, result))
        else:
            lines.append(f"{name:<34} {_cohort_figures(result.get('json')) or result.get('status', 'ran')}"
                         + (f", peak {result['peak_gpu_allocated_mib']} MiB" if result.get("peak_gpu_allocated_mib")
                            else ""))
    return lines


def _cohort_figures(found: Any) -> str:
    """bench_cohort.py's figures in a few words, when its JSON has them."""
    if not isinstance(found, dict) or "ratio" not in found:
        return ""
    return (f"{found['ratio']}x packed: {found.get('members')} members, member by member "
            f"{statistics.median(found.get('member_by_member_s') or [0]):.1f} s, packed "
            f"{statistics.median(found.get('packed_s') or [0]):.1f} s")


def _matches(name: str, pattern: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder for gpu_check.json")
    parser.add_argument("--device", default="auto", help="auto | cuda | cuda:N | cpu")
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: try the script on a CPU in minutes")
    parser.add_argument("--budget", type=float, default=None,
                        help="Seconds from the script's start to the last section's end (default 330, "
                        "--quick 300: the whole call stays under 6 min)")
    parser.add_argument("--only", default="", help="Comma-separated sections to run: names, or prefixes "
                        "ending in * (e.g. correctness,bench/resnet18*); the environment always runs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, started: float | None = None) -> dict[str, Any]:
    """Run the check; the budget counts from `started` (a monotonic time; default: now)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from sdd_tui.core.engine.experiment import resolve_device

    device = str(resolve_device(args.device))
    sizes = QUICK if args.quick else FULL
    check = Check(args.out, device, sizes, args.budget or (300.0 if args.quick else 330.0), args.quick, argv,
                  started)
    wanted = [part.strip() for part in args.only.split(",") if part.strip()]
    for name, kind, work in sections(check, args.quick):
        if wanted and name != "environment" and not any(_matches(name, pattern) for pattern in wanted):
            continue
        if kind == "skipped":
            check.report["sections"][name] = {"status": "skipped", "error": "--quick compiles lenet300_100 only"}
            continue
        check.run(name, kind, work)
    check.report["finished_utc"] = _utc_now()
    check.report["summary"] = summary(check.report)
    check.write()
    print(json.dumps(_finite(check.report), separators=(",", ":"), allow_nan=False))
    print("\n".join(["", f"gpu_check on {device}, {check.report['elapsed_s']} s:", *check.report["summary"]]))
    return check.report


if __name__ == "__main__":
    finished = main(started=PROCESS_STARTED)
    # 1 when a section failed or overran (the report holds what ran); skipped sections are no failure
    sys.exit(int(any(entry["status"] in ("error", "timeout") for entry in finished["sections"].values())))
