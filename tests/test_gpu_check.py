"""benchmarks/gpu_check.py: the quick mode writes the report the GPU call needs; sections fail alone."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("gpu_check", None)


def _strict_json(path: Path) -> dict:
    def reject(constant: str):
        raise AssertionError(f"{constant} in {path}: the report must be strict JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


@pytest.mark.slow
def test_quick_check_writes_the_report_of_every_section_it_ran(gpu_check, tmp_path, monkeypatch, one_thread):
    monkeypatch.setattr(gpu_check, "COHORT_SCRIPT", tmp_path / "no_such_bench_cohort.py")
    # smaller still than --quick: two steps a round, a sixteenth of ResNet-18's width
    monkeypatch.setattr(gpu_check, "QUICK", dataclasses.replace(
        gpu_check.QUICK, run_width=0.0625, run_train=64, run_test=32, run_batch_size=32, eval_batch_size=64,
        run_rewind=1))
    gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--quick",
                    "--only", "bench/lenet300_100-mnist,bf16_vs_fp32,cohort"])
    report = _strict_json(tmp_path / "gpu_check.json")
    assert {"tool", "schema", "started_utc", "finished_utc", "elapsed_s", "budget_s", "quick", "device",
            "sections", "summary"} <= set(report)
    sections = report["sections"]
    assert list(sections) == ["environment", "bench/lenet300_100-mnist", "bf16_vs_fp32", "cohort"]
    assert all(entry["status"] == "ok" for entry in sections.values()), sections
    assert len(report["summary"]) == len(sections)
    assert {"python", "torch", "torchvision", "cuda", "cudnn", "cpu"} <= set(sections["environment"]["result"])

    bench = sections["bench/lenet300_100-mnist"]["result"]
    assert bench["project_samples_per_s"] > 0 and bench["reference_samples_per_s"] > 0
    assert bench["ratio"] == pytest.approx(bench["project_samples_per_s"] / bench["reference_samples_per_s"])
    assert bench["eval_samples"] == 3 * 16 and bench["test_samples"] == 10_000  # 3 timed batches of 16
    train_epoch = bench["train_samples"] / bench["project_samples_per_s"]
    assert bench["project_epoch_s"] == pytest.approx(
        train_epoch + bench["test_samples"] / bench["project_eval_samples_per_s"])
    assert bench["project_full_run_with_eval_s"] > bench["project_full_run_s"]

    runs = sections["bf16_vs_fp32"]["result"]
    assert set(runs["runs"]) == {"fast", "fast_fp32"}
    for run in runs["runs"].values():
        assert run["status"] == "finished" and run["amp"] == "fp32"  # no autocast on a CPU
        assert [r["round"] for r in run["rounds"]] == [0, 1]
        assert run["rounds"][1]["sparsity"] == pytest.approx(0.2, abs=1e-4)
        assert run["pruned_nonzero"] == 0 and run["peak_gpu"] is None
    comparison = runs["fast_vs_fast_fp32"]
    assert comparison["masks_equal"] == 1.0 and comparison["test_acc_gap_pts"] == 0  # the same computation here
    assert runs["pruned_weights_zero"] is True
    assert sections["cohort"]["result"] == {"present": False, "status": "absent"}


def test_a_failing_or_overrunning_section_is_recorded_and_the_next_one_runs(gpu_check, tmp_path):
    sizes = dataclasses.replace(gpu_check.QUICK, limits={**gpu_check.QUICK.limits, "bench": 0.5})
    check = gpu_check.Check(tmp_path, "cpu", sizes, budget=60, quick=True, argv=[])
    check.run("broken", "bench", lambda: {"ratio": 1 / 0})
    started = time.monotonic()
    check.run("stuck", "bench", lambda: time.sleep(30) or {})
    assert time.monotonic() - started < 5
    check.run("fine", "bench", lambda: {"ratio": 2.0})
    sections = _strict_json(tmp_path / "gpu_check.json")["sections"]
    assert sections["broken"]["status"] == "error" and "ZeroDivisionError" in sections["broken"]["error"]
    assert sections["broken"]["traceback"]
    assert sections["stuck"]["status"] == "timeout" and "limit" in sections["stuck"]["error"]
    assert sections["fine"] == {**sections["fine"], "status": "ok", "result": {"ratio": 2.0}}


def test_a_section_is_skipped_once_the_budget_is_spent(gpu_check, tmp_path):
    ran = []
    check = gpu_check.Check(tmp_path, "cpu", gpu_check.QUICK, budget=0, quick=True, argv=[])
    entry = check.run("late", "bench", lambda: ran.append(1) or {})
    assert entry["status"] == "skipped" and "budget" in entry["error"] and not ran


def test_compare_runs_counts_agreeing_masks_and_accuracy_gaps(gpu_check):
    def run(mask: list[bool], test_acc: float) -> dict:
        rounds = [{"round": 0, "test_acc": 0.9, "train_acc": 0.8, "noisy_memorized": 0.1},
                  {"round": 1, "test_acc": test_acc, "train_acc": 0.8, "noisy_memorized": 0.1}]
        return {"_masks": {"w": torch.tensor(mask)}, "rounds": rounds}

    comparison = gpu_check.compare_runs(run([True, True, False, False], 0.75), run([True, False, True, False], 0.70))
    assert comparison["masks_equal"] == 0.5 and comparison["pruned_overlap"] == 0.5
    assert comparison["test_acc_gap_pts"] == 5.0 and comparison["train_acc_gap_pts"] == 0.0
    assert comparison["max_round_test_acc_gap_pts"] == 5.0
    weights = {"w": torch.tensor([1.0, 2.0, 0.0, 3.0])}
    assert gpu_check._pruned_nonzero(weights, {"w": torch.tensor([True, True, False, False])}) == 1


def test_the_cohort_bench_runs_as_a_child_with_the_options_it_knows(gpu_check, tmp_path, monkeypatch):
    script = tmp_path / "bench_cohort.py"
    script.write_text("import json, sys\n# options: --device, --json\nprint('working')\n"
                      "print(json.dumps({'argv': sys.argv[1:]}))\n")
    monkeypatch.setattr(gpu_check, "COHORT_SCRIPT", script)
    result = gpu_check.cohort("cpu", quick=True, limit=60)
    assert result["json"] == {"argv": ["--device", "cpu", "--json"]}  # no --quick: its source does not name it
    figures = {"ratio": 3.1, "members": 5, "member_by_member_s": [62.0], "packed_s": [20.0]}
    report = {"sections": {"cohort": {"status": "ok", "result": {**result, "json": figures}}}}
    assert gpu_check.summary(report) == [f"{'cohort':<34} 3.1x packed: 5 members, member by member 62.0 s, "
                                         "packed 20.0 s"]
    assert result["returncode"] == 0 and result["stdout_tail"][0] == "working"
    script.write_text("import sys\nprint('no GPU', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(RuntimeError, match="exited 3: no GPU"):
        gpu_check.cohort("cpu", quick=False, limit=60)


# ---------------------------------------------------------------------------- the GPU's branches, on the CPU

TINY_RUNS = dict(run_width=0.0625, run_train=64, run_test=32, run_batch_size=32, eval_batch_size=64, run_rewind=1)


@pytest.mark.slow
def test_the_quick_check_takes_the_gpus_branches_on_the_cpu(gpu_check, tmp_path, monkeypatch, one_thread,
                                                               as_on_a_gpu):
    """The sections the CPU test above leaves out (the correctness runs and a compiled bench), each with the fast
    path's GPU choices: channels_last, bf16 autocast, the fused step and torch.compile (a cheap backend)."""
    import torch._dynamo

    torch._dynamo.reset()
    monkeypatch.setattr(gpu_check, "QUICK", dataclasses.replace(gpu_check.QUICK, **TINY_RUNS))
    gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--quick",
                    "--only", "correctness,bench/lenet300_100-mnist/compile"])
    sections = _strict_json(tmp_path / "gpu_check.json")["sections"]
    assert list(sections) == ["environment", "correctness", "bench/lenet300_100-mnist/compile"]
    assert all(entry["status"] == "ok" for entry in sections.values()), sections
    runs = sections["correctness"]["result"]
    assert {name: run["amp"] for name, run in runs["runs"].items()} == {"fast": "bf16", "slow": "fp32"}
    assert all(run["status"] == "finished" for run in runs["runs"].values())
    assert runs["pruned_weights_zero"] is True and 0 < runs["fast_vs_slow"]["masks_equal"] <= 1
    bench = sections["bench/lenet300_100-mnist/compile"]["result"]
    assert bench["compile"] is True and bench["project_samples_per_s"] > 0


# ---------------------------------------------------------------------------- gpu_prepare.sh

PREPARE = SCRIPT.with_name("gpu_prepare.sh")
IMAGE_HAS = ("torch", "torchvision", "scikit-learn", "matplotlib")  # gpu_prepare.sh: the GPU image's own
# gpu_check's sections in a fresh process where only `allowed` top-level modules (and the standard library) can
# be imported, as on the GPU machine: what torch imports only if present fails there as here, and is skipped
IMPORTS_PROBE = """
import importlib.machinery, json, sys
allowed, blocked = set(json.loads(sys.argv[4])), set()

class NotOnTheGpuMachine:
    \"\"\"A finder that finds no package outside `allowed`, as if it were not installed.\"\"\"
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        if "." not in name and name not in allowed and name not in sys.stdlib_module_names and name[0] != "_":
            blocked.add(name)
            return None
        return self.inner.find_spec(name, path, target)
    def invalidate_caches(self):
        getattr(self.inner, "invalidate_caches", lambda: None)()

stdlib = (importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter)
sys.meta_path = [f if f in stdlib else NotOnTheGpuMachine(f) for f in sys.meta_path]
import dataclasses, importlib.util
from pathlib import Path
script, out = Path(sys.argv[1]), sys.argv[2]
spec = importlib.util.spec_from_file_location("gpu_check", script)
module = importlib.util.module_from_spec(spec)
sys.modules["gpu_check"] = module
spec.loader.exec_module(module)
module.COHORT_SCRIPT = Path(out) / "absent.py"
module.QUICK = dataclasses.replace(module.QUICK, **json.loads(sys.argv[3]))
report = module.main(["--out", out, "--device", "cpu", "--quick", "--only", "bench/lenet300_100-mnist,bf16_vs_fp32"])
print(json.dumps({"sections": {name: entry.get("error") or entry["status"]
                               for name, entry in report["sections"].items()}, "blocked": sorted(blocked)}))
"""


def _with_dependencies(names) -> set[str]:
    """`names` and everything they require (installed metadata; markers for this Python, no extras)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found, todo = set(), [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [canonicalize_name(r.name) for r in map(Requirement, requires)
                 if r.marker is None or r.marker.evaluate({"extra": ""})]
    return found


@pytest.mark.slow
def test_gpu_prepare_dry_run_lists_every_package_gpu_check_imports(tmp_path):
    from importlib import metadata

    from packaging.utils import canonicalize_name

    wheels = SCRIPT.parents[1] / ".gpu-wheels"
    existed = wheels.exists()
    done = subprocess.run(["bash", str(PREPARE), "--dry-run", "3.12"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert wheels.exists() == existed  # a dry run writes nothing
    lines = done.stdout.splitlines()
    pinned = {canonicalize_name(line.split("==")[0]) for line in lines if "==" in line and not line.startswith("#")}
    assert {"pydantic", "pydantic-core", "textual", "typer", "tinydb", "rich"} <= pinned
    assert sum(line.startswith("# python3 -m pip download") for line in lines) == 2
    image = _with_dependencies(IMAGE_HAS)
    assert _with_dependencies(pinned) <= pinned | image  # the set is closed: `pip install --no-index` needs no more

    providers = metadata.packages_distributions()  # top-level module -> the distributions that install it
    allowed = [module for module, dists in providers.items()
               if any(canonicalize_name(dist) in pinned | image for dist in dists)]
    own = ["sdd_tui", "gpu_check"]
    probe = subprocess.run([sys.executable, "-P", "-c", IMPORTS_PROBE, str(SCRIPT), str(tmp_path),
                            json.dumps(TINY_RUNS), json.dumps(allowed + own)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-2000:]
    found = json.loads(probe.stdout.splitlines()[-1])
    assert found["sections"] == {"environment": "ok", "bench/lenet300_100-mnist": "ok", "bf16_vs_fp32": "ok"}, found
