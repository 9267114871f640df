"""README.md and docs/*.md: every relative link reaches a file (and its #anchor a heading), the README stays a
front door, and docs/CLI.md has a section for every command the installed `sdd-tui` offers."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer

from sdd_tui.cli import app

REPO = Path(__file__).resolve().parents[1]  # the checkout: read as files only, never imported
PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, markup and punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            slug = github_anchor(match.group(1))
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return found


def relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    targets = [a or b for a, b in LINK.findall(text)]
    return [target for target in targets if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_reaches_a_file_and_its_heading(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_readme_is_a_front_door_of_200_lines_at_most():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move the reference into docs/"


def test_the_command_reference_has_a_section_for_every_command():
    listing = (REPO / "docs" / "CLI.md").read_text(encoding="utf-8")

    def names(group: click.Group, prefix: str):
        for name, command in group.commands.items():
            if command.hidden:
                continue
            yield f"{prefix} {name}"
            if isinstance(command, click.Group):
                yield from names(command, f"{prefix} {name}")

    missing = [name for name in names(typer.main.get_command(app), "sdd-tui")
               if f"### `{name}`\n" not in listing]
    assert not missing, f"docs/CLI.md has no `--help` section for {missing}: regenerate its last part"
