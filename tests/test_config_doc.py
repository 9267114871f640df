"""docs/CONFIG.md is generated from the installed package's config models: it fails when the file is stale."""

from __future__ import annotations

from pathlib import Path

from sdd_tui.core.config import ExperimentConfig
from sdd_tui.core.config_doc import config_reference

REPO = Path(__file__).resolve().parents[1]  # the checkout: read as files only, never imported
COMMITTED = REPO / "docs" / "CONFIG.md"


def test_the_committed_config_reference_is_what_the_models_generate():
    assert COMMITTED.read_text(encoding="utf-8") == config_reference(), (
        "docs/CONFIG.md is out of date: run `python -P -m sdd_tui.core.config_doc docs/CONFIG.md` after installing")


def test_every_field_of_every_section_is_documented_with_its_default_and_bounds():
    text = config_reference()
    for section, field in ExperimentConfig.model_fields.items():
        fields = getattr(field.annotation, "model_fields", None)
        if fields is None:
            continue
        assert f"## `[{section}]`" in text
        block = text.split(f"## `[{section}]`")[1].split("\n## ")[0]
        for name, info in fields.items():
            (row,) = [line for line in block.splitlines() if line.startswith(f"| `{name}` |")]
            assert info.description and info.description.split(" ")[0].replace("|", "\\|") in row
    assert "| `threads` | int or none | `none` | >= 1, <= 1,024 |" in text
    assert "| `rate` | float | `0.2` | >= 0.0, <= 1.0 |" in text
