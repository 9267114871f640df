"""Runs stored by an older version group with today's runs of the same setting: a field the older version
did not have counts at its default, and a config saved before `runtime.seed_scheme` as scheme 1, a seed
stream like any other seed (core.history.grouping.completed)."""

from __future__ import annotations

from sdd_tui.core.analysis.figures import group_by_seed
from sdd_tui.core.config import resolve_config
from sdd_tui.core.history.grouping import differing_fields, group_by_setting, setting_key


def today(seed: int, **train) -> dict:
    config = resolve_config("smoke").model_dump(mode="json")
    config["runtime"]["seed"] = seed
    config["train"].update(train)
    return config


def older(seed: int) -> dict:
    """As a version before `train.warmup`, `train.data_order` and `runtime.seed_scheme` stored it."""
    config = today(seed)
    for field in ("warmup", "data_order"):
        del config["train"][field]
    del config["runtime"]["seed_scheme"]
    return config


def record(run_id: str, config: dict) -> dict:
    return {"id": run_id, "name": run_id, "config": config, "rounds": [{"round": 0, "sparsity": 0.0, "test_acc": 0.5}]}


def test_an_older_run_groups_with_todays_runs_of_its_setting():
    runs = [record("old", older(0)), record("new", today(1)), record("warm", today(2, warmup=5))]
    assert [[r["id"] for r in group] for group in group_by_setting(runs)] == [["old", "new"], ["warm"]]
    assert [[r.id for r in group.records] for group in group_by_seed(runs)] == [["old", "new"], ["warm"]]
    assert setting_key(older(0)) == setting_key(today(3))
    assert differing_fields([older(0), today(1)]) == []  # not `train.warmup`, not `runtime.seed_scheme`
    assert differing_fields([older(0), today(1, warmup=5)]) == ["train.warmup"]


def test_a_stored_value_is_kept_as_stored_even_where_today_would_refuse_it():
    config = today(0)
    config["train"]["lr"] = "not a number"  # a hand-edited record: grouped as it reads, never "fixed"
    assert setting_key(config) != setting_key(today(0))
    assert setting_key(config) == setting_key({**config, "runtime": {**config["runtime"], "seed": 9}})
