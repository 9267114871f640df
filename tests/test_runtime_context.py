"""No side effects: importing the package changes nothing in the process, and a run undoes its torch settings.

A notebook, the app or a test runs experiments inside a process of its own: the run's thread count, seed,
cuDNN and matmul flags are applied by one run context (sdd_tui/core/engine/runtime_context.py) and put back when it ends.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.engine.openmp import WAIT_KEYS
from sdd_tui.core.engine.runtime_context import open_contexts, run_context
from sdd_tui.core.runs.cohort import Cohort
from sdd_tui.core.runs.launch import build_run

IMPORT_PROBE = """
import importlib, json, os, pkgutil, sys
before = dict(os.environ)
import sdd_tui, sdd_tui.cli, sdd_tui.core, sdd_tui.core.engine.experiment, sdd_tui.core.engine.runtime_context  # before torch
early = dict(os.environ)
import torch
def settings():
    return [torch.get_num_threads(), torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
            torch.get_float32_matmul_precision()]
torch_env, torch_settings = dict(os.environ), settings()
modules = []
for top in ("sdd_tui",):  # the one package: the engine and the presets inside it
    package = importlib.import_module(top)
    for found in pkgutil.walk_packages(package.__path__, top + "."):
        if not found.name.endswith("__main__"):  # sdd_tui.__main__ would start the app
            importlib.import_module(found.name)
            modules.append(found.name)
print(json.dumps({"early_changed": sorted(k for k in set(before) | set(early) if before.get(k) != early.get(k)),
                  "changed": sorted(k for k in set(torch_env) | set(os.environ)
                                    if torch_env.get(k) != os.environ.get(k)),
                  "settings": [torch_settings, settings()], "modules": len(modules)}))
"""


@pytest.mark.slow  # a fresh interpreter imports every module: torch, torch._dynamo, textual
def test_importing_every_module_changes_no_environment_variable_and_no_torch_setting(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in WAIT_KEYS}
    shown = subprocess.run([sys.executable, "-P", "-c", IMPORT_PROBE], capture_output=True, text=True, env=env,
                           cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-3000:]
    found = json.loads(shown.stdout.strip().splitlines()[-1])
    assert found["modules"] > 50  # the walk found the packages: core alone has more modules than that
    assert found["early_changed"] == [] and found["changed"] == []
    before, after = found["settings"]
    assert before == after


@pytest.mark.parametrize("given, expected", [
    ({}, {"GOMP_SPINCOUNT": "10000"}),  # short spinning: fast when idle, gives the cores back under load
    ({"OMP_WAIT_POLICY": "PASSIVE"}, {"OMP_WAIT_POLICY": "PASSIVE"}),  # the user's own settings win
    ({"GOMP_SPINCOUNT": "300000"}, {"GOMP_SPINCOUNT": "300000"}),
])
def test_the_entry_point_sets_openmp_waiting_before_torch_loads_unless_the_user_chose(tmp_path, given, expected):
    probe = ("import os, sys\nfrom sdd_tui.cli import main\nsys.argv = ['sdd-tui', '--version']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             f"print('torch' in sys.modules, {{k: os.environ[k] for k in {WAIT_KEYS!r} if k in os.environ}})")
    env = {k: v for k, v in os.environ.items() if k not in WAIT_KEYS} | given
    shown = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.strip().splitlines()[-1] == f"False {expected}"


# ---------------------------------------------------------------------------- runs inside this process


def process_settings() -> dict:
    return {"threads": torch.get_num_threads(), "benchmark": torch.backends.cudnn.benchmark,
            "deterministic": torch.backends.cudnn.deterministic, "cudnn_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
            "precision": torch.get_float32_matmul_precision(), "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate()}


def assert_same(before: dict, after: dict) -> None:
    assert torch.equal(before.pop("torch_rng"), after.pop("torch_rng"))
    assert before == after


@pytest.fixture
def unusual_settings():
    """Settings no run would choose, so that a run that leaves its own in place is seen; the test's own
    change is undone afterwards."""
    saved = process_settings()
    torch.set_num_threads(3)
    torch.set_float32_matmul_precision("medium")
    torch.manual_seed(12345)
    random.seed(54321)
    yield process_settings()
    torch.set_num_threads(saved["threads"])
    torch.set_float32_matmul_precision(saved["precision"])
    assert open_contexts() == 0, "a run context was left open"


def test_a_run_puts_back_the_threads_and_random_states_it_changed(unusual_settings, home, smoke_config):
    status = build_run(smoke_config("runtime.threads=1", "runtime.seed=7", "prune.rounds=1"), home).run()
    assert status == "finished"
    assert_same(unusual_settings, process_settings())


def test_the_context_applies_threads_and_seed_and_undoes_every_flag_even_after_an_error(unusual_settings):
    with pytest.raises(ZeroDivisionError), run_context(threads=1, seed=7):
        assert torch.get_num_threads() == 1 and torch.initial_seed() == 7
        torch.backends.cudnn.benchmark = torch.backends.cudnn.deterministic = True  # as the fast Trainer does
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        torch.set_float32_matmul_precision("high")
        random.random()
        1 / 0
    assert_same(unusual_settings, process_settings())


def test_overlapping_contexts_ended_out_of_order_leave_the_newest_in_force_then_the_outside(unusual_settings):
    seeded = torch.Generator().manual_seed(1)
    expected = [torch.rand(1, generator=seeded) for _ in range(2)]
    first, second = run_context(threads=1, seed=1), run_context(threads=2)
    first.__enter__()
    second.__enter__()
    assert torch.equal(torch.rand(1), expected[0])
    first.__exit__(None, None, None)  # the older one ends first, as a cohort member may
    assert torch.get_num_threads() == 2 and open_contexts() == 1
    assert torch.equal(torch.rand(1), expected[1])  # the random stream goes on while a run is still open
    second.__exit__(None, None, None)
    assert_same(unusual_settings, process_settings())


def test_a_packed_cohort_in_threads_puts_back_the_process_settings(unusual_settings, home, smoke_config):
    configs = [smoke_config(f"runtime.seed={seed}", "prune.rounds=1") for seed in (0, 1)]
    cohort = Cohort(threads=1)
    handles = [build_run(config, home, branch_trainer=cohort.branch_trainer) for config in configs]
    assert set(cohort.run(handles).values()) == {"finished"}
    assert_same(unusual_settings, process_settings())


def test_bench_branch_and_analyze_commands_put_back_the_process_settings(unusual_settings, home, smoke_config):
    stored = build_run(smoke_config("prune.rounds=1"), home)
    assert stored.run() == "finished"
    run_id = stored.run_id
    runner = CliRunner()
    commands = [["bench", "--batches", "2", "--device", "cpu", "--threads", "1", "--json"],
                ["branch", run_id, "reinit", "--rounds", "1", "--home", str(home)],
                ["analyze", run_id, "--redense", "--rounds", "1", "--epochs", "1", "--interp-steps", "2",
                 "--home", str(home)]]
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        assert_same(dict(unusual_settings), process_settings())
