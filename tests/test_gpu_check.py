"""benchmarks/gpu_check.py: the quick mode writes the report the GPU call needs; sections fail alone."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
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
