"""Input a user gets wrong never starts anything: one `error:` line naming the fix, exit 2, no store written.

Config files that are binary, endless, blocking or absurdly nested; seeds beyond what the engine can
use; sweeps of millions of members; unknown engines and devices, with --dry-run too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdd_tui.cli import app


def fails_with_one_line(home: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--home", str(home)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert not (home / "store.json").exists()  # nothing stored, nothing started
    return lines[0]


def test_a_binary_config_file_is_not_utf8_text(tmp_path):
    config = tmp_path / "model.toml"
    config.write_bytes(bytes(range(256)) * 8)
    assert "is not UTF-8 text" in fails_with_one_line(tmp_path / "home", "--config", str(config))


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_a_config_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path, special):
    if special == "fifo":
        path = tmp_path / "pipe.toml"
        os.mkfifo(path)  # reading it would block forever
    elif special == "folder":
        path = tmp_path / "configs"
        path.mkdir()
    else:
        path = Path(special)  # reading it would never end
    assert "is not a regular file" in fails_with_one_line(tmp_path / "home", "--config", str(path))


def test_a_config_file_over_a_mebibyte_is_refused(tmp_path):
    config = tmp_path / "big.toml"
    config.write_text("# padding\n" * 120_000)
    assert "more than a config's" in fails_with_one_line(tmp_path / "home", "--config", str(config))


def test_a_deeply_nested_toml_is_one_line(tmp_path):
    config = tmp_path / "nested.toml"
    config.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in fails_with_one_line(tmp_path / "home", "--config", str(config))


@pytest.mark.parametrize("field", ["runtime.seed", "noise.seed"])
def test_a_seed_beyond_what_the_engine_takes_names_the_field(tmp_path, field):
    line = fails_with_one_line(tmp_path / "home", "--preset", "smoke", "--set", f"{field}={2**63}")
    assert field in line


def test_a_sweep_of_ten_million_seeds_is_refused_at_once(tmp_path):
    line = fails_with_one_line(tmp_path / "home", "sweep", "--preset", "smoke", "--seeds", "0-10000000", "--dry-run")
    assert "at most 1000 seeds" in line


def test_a_sweep_grid_beyond_ten_thousand_members_is_refused(tmp_path):
    values = ",".join(str(v) for v in range(1, 120))
    line = fails_with_one_line(tmp_path / "home", "sweep", "--preset", "smoke", "--grid", f"train.epochs={values}",
                               "--grid", f"prune.rounds={values}", "--dry-run")
    assert "14,161 members" in line


def test_an_unknown_engine_is_refused_even_for_a_dry_run(tmp_path):
    line = fails_with_one_line(tmp_path / "home", "sweep", "--preset", "smoke", "--engine", "bogus", "--dry-run")
    assert "--engine 'bogus'" in line and "local or ray" in line


def test_analyze_on_an_unknown_device_is_one_line(tmp_path):
    line = fails_with_one_line(tmp_path / "home", "analyze", "20260101-000000-abcd", "--redense", "--rounds", "1",
                               "--device", "bogus")
    assert "--device 'bogus'" in line


def test_a_dataset_too_big_for_memory_says_how_many_bytes(tmp_path):
    line = fails_with_one_line(tmp_path / "home", "--preset", "smoke", "--set", "data.synthetic_train=10000000",
                               "--set", "data.shape=[3,512,512]")
    assert "out of memory loading the data" in line and "(31,457,280,000,000 bytes)" in line
    assert "data.synthetic_train" in line


@pytest.mark.slow
def test_a_model_too_big_for_memory_fails_the_run_in_one_line(tmp_path):
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["--preset", "smoke", "--set", "model.hidden=[10000000, 100000]",
                                      "--home", str(home)])
    assert result.exit_code == 2
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: out of memory in round 0: asked for 4.0 TB") and "model.hidden" in line
    from sdd_tui.core.history.store import Store

    (record,) = Store(home).list_runs()
    assert record["status"] == "failed" and "asked for 4.0 TB" in record["error"]


def test_sizes_read_like_a_disk_label():
    from sdd_tui.core.format import size

    assert [size(n) for n in (512, 1_500, 31_457_280_000_000, 4 * 10**18)] == ["512 B", "1.5 KB", "31.5 TB",
                                                                                "4000.0 PB"]
