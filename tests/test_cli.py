import csv
import json

import pytest
from sdd_test_helpers import invoke

from sdd_tui.core.history.store import Store


def test_presets_list_and_show():
    result = invoke("presets")
    assert result.exit_code == 0
    assert "digits-noise40" in result.output and "CPU demo" in result.output
    shown = invoke("presets", "show", "resnet18-noise20")
    assert shown.exit_code == 0 and "milestones = [80, 120]" in shown.output
    assert invoke("presets", "show", "nope").exit_code == 2


def test_unknown_preset_exits_2_with_the_list(home):
    result = invoke("--preset", "nope", "--home", str(home))
    assert result.exit_code == 2
    assert "error: unknown preset 'nope'" in result.output and "smoke" in result.output
    assert Store(home).list_runs() == []


def test_bad_override_exits_2_and_stores_nothing(home):
    result = invoke("--preset", "smoke", "--set", "train.epochs=-1", "--home", str(home))
    assert result.exit_code == 2 and "train.epochs" in result.output
    assert Store(home).list_runs() == []


def test_smoke_end_to_end_then_runs_show_export_delete(home, tmp_path):
    result = invoke("--preset", "smoke", "--home", str(home))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("run ")
    run_id = lines[0].split()[1]
    assert any("round 1/3 epoch 2/2" in line and "eta" in line for line in lines)
    assert any(line.startswith("round 3/3 done: sparsity 48.") for line in lines)
    assert "finished" in lines[-1]
    assert any("double descent" in line or "dense" in line for line in lines[-4:-1])  # phases under the table

    listed = invoke("runs", "--json", "--home", str(home))
    assert [r["id"] for r in json.loads(listed.output)] == [run_id]

    shown = json.loads(invoke("runs", "show", run_id[:-1], "--json", "--home", str(home)).output)
    assert set(shown) >= {"id", "name", "status", "config", "rounds"}
    assert shown["status"] == "finished" and shown["config"]["name"] == "smoke"
    keys = {"round", "sparsity", "remaining", "test_acc", "best_test_acc", "train_acc", "noisy_memorized",
            "noisy_true_acc", "learning_distance", "seconds"}
    for r in shown["rounds"]:
        assert keys <= set(r)
        assert r["sparsity"] == pytest.approx(1 - 0.8 ** r["round"], abs=2e-3)
    assert "rounds" in invoke("runs", "show", run_id, "--home", str(home)).output

    out_csv = tmp_path / "run.csv"
    assert invoke("runs", "export", run_id, "--format", "csv", "-o", str(out_csv), "--home", str(home)).exit_code == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 4 and rows[0]["config.model.name"] == "mlp" and rows[3]["round"] == "3"
    out_json = tmp_path / "run.json"
    invoke("runs", "export", run_id, "--format", "json", "-o", str(out_json), "--home", str(home))
    assert json.loads(out_json.read_text())["id"] == run_id
    assert invoke("runs", "export", run_id, "--format", "xml", "-o", str(out_json), "--home", str(home)).exit_code == 2

    assert invoke("runs", "delete", run_id, "--yes", "--home", str(home)).exit_code == 0  # no TTY: --yes
    assert Store(home).list_runs() == []
    assert invoke("runs", "show", run_id, "--home", str(home)).exit_code == 2


def test_home_from_environment(home):
    assert invoke("--preset", "smoke", "--set", "prune.rounds=1").exit_code == 0
    assert len(Store(home).list_runs()) == 1
