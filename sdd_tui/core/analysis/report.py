"""`sdd-tui report`: the poster's four findings from the runs given, on one page.

Runs are grouped into seed groups as `plot` groups them (core.history.grouping; mean ± sample std, n shown).
The page: an overview, then (1) sparse double descent with its phases and the paper's reference
numbers, (2) learning distance against test accuracy, (3) minima flatness, (4) winning tickets against
random reinits, then the settings that differ, provenance and the commands that reproduce each run.
A missing piece never fails the report: its section says what is missing and the command that adds it.
The page's blocks are written by core.analysis.report_page (HTML with inline SVG, or Markdown).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SddError
from ..format import pct, printable
from ..history.grouping import differing_fields, experiment_fields, flatten
from ..history.records import RunRecord, SweepRecord
from ..history.run_index import summary
from ..history.store import display_status
from ..provenance import package_version
from .figures import SeedGroup, figure_one, group_by_seed, group_curve, group_phases
from .report_page import Bands, Figure, Heading, Page, Table, Text, write_page
from .report_sections import (
    distance_section,
    figure_title,
    flatness_section,
    reproduce_section,
    settings_section,
    tickets_section,
)
from .report_stats import mean_text, point_text, reference_for, reference_rows, references

PHASE_COLUMNS = ("light", "critical", "sweet", "collapsed")


@dataclass
class Selection:
    """The runs a report is about, in the order given (sweep members in the order of their grid)."""

    records: list[RunRecord]
    sweeps: list[SweepRecord] = field(default_factory=list)
    home: Path | None = None


def select_runs(store, run_ids: list[str], sweep_ids: list[str]) -> Selection:
    """Runs by id or unique prefix and every stored member of each sweep; SddError when none is given."""
    if not run_ids and not sweep_ids:
        raise SddError("say which runs: give run ids (or unique prefixes) or --sweep ID; `sdd-tui runs` lists them")
    records: dict[str, RunRecord] = {}
    sweeps = []
    for sweep_id in sweep_ids:
        sweep = store.sweep(sweep_id)
        sweeps.append(sweep)
        stored = store.runs([m["run_id"] for m in sweep.members])
        for member in sweep.members:
            if member["run_id"] in stored and member["run_id"] not in records:
                records[member["run_id"]] = stored[member["run_id"]]
        if not stored:
            raise SddError(f"sweep {sweep.id} has no run yet; `sdd-tui sweeps show {sweep.id}` says why")
    for run_id in run_ids:
        record = store.run(run_id)
        records.setdefault(record.id, record)
    return Selection(list(records.values()), sweeps, Path(store.home))


# ---------------------------------------------------------------------------- the page


def build_report(selection: Selection, version: str = "?") -> Page:
    records = _tagged(selection.records)
    groups = group_by_seed(records)
    names = {id(group): f"G{index + 1}" for index, group in enumerate(groups)}
    page = Page(_title(records, selection.sweeps), _lead(records, groups, version))
    page.blocks += _overview(selection, groups, names)
    page.blocks += double_descent_section(records, groups)
    page.blocks += distance_section(records, groups)
    page.blocks += flatness_section(records, groups, selection.home)
    page.blocks += tickets_section(records, groups, selection.home)
    page.blocks += settings_section(groups, names)
    page.blocks += provenance_section(records)
    page.blocks += reproduce_section(records, selection.sweeps)
    return page


def _tagged(records: list[RunRecord]) -> list[RunRecord]:
    """Copies of the records named after their group ("G2 smoke") when there are several groups, so that
    legends and tables tell apart groups whose runs share a name."""
    groups = group_by_seed(records)
    if len(groups) < 2:
        return records
    tag = {record.id: f"G{index + 1}" for index, group in enumerate(groups) for record in group.records}
    return [record.model_copy(update={"name": f"{tag[record.id]} {record.name or ''}".rstrip()})
            for record in records]


def _title(records: list[RunRecord], sweeps: list[SweepRecord]) -> str:
    if sweeps:
        return "Sparse double descent report: " + ", ".join(printable(s.name or s.id) for s in sweeps)
    if len(records) == 1:
        return f"Sparse double descent report: {printable(records[0].name or '')} ({records[0].id})"
    return f"Sparse double descent report: {len(records)} runs"


def _lead(records: list[RunRecord], groups: list[SeedGroup], version: str) -> str:
    return (f"{len(records)} run(s) in {len(groups)} setting(s), written {time.strftime('%Y-%m-%d %H:%M')} by "
            f"sdd-tui {version}. Runs that differ only by seed are one group, as `sdd-tui plot` groups them: "
            f"values are the mean ± sample standard deviation over the group's n seeds; accuracies are last-epoch "
            f"test accuracies unless named otherwise.")


def _overview(selection: Selection, groups: list[SeedGroup], names: dict[int, str]) -> list[Any]:
    blocks: list[Any] = [Heading("Overview", anchor="overview")]
    for sweep in selection.sweeps:
        grid = "; ".join(f"{k} = {', '.join(v)}" for k, v in (sweep.grid or {}).items()) or "no grid"
        blocks.append(Text(f"Sweep {sweep.id} ({printable(sweep.name or '')}): {grid}; seeds "
                           f"{', '.join(map(str, sweep.seeds))}; {len(sweep.members)} members, "
                           f"{sum(1 for r in selection.records if r.sweep == sweep.id)} of them stored. "
                           f"Groups follow its grid."))
    changed = differing_fields([g.records[0].config for g in groups])
    rows = []
    for group in groups:
        fields = experiment_fields(group.records[0].config)
        setting = ", ".join(f"{key}={fields.get(key)}" for key in changed) or "-"
        statuses = [display_status(r) for r in group.records]
        rounds = [summary(r) for r in group.records]
        test = group_curve(group, "test_acc")
        best = max(range(len(test.mean)), key=lambda i: test.mean[i]) if test.mean else None
        rows.append((names[id(group)], printable(group.label), printable(setting), len(group.records),
                     ", ".join(f"{s} x{statuses.count(s)}" for s in dict.fromkeys(statuses)),
                     ", ".join(f"{r['rounds_done']}/{r['rounds_total']}" for r in rounds[:6])
                     + (" ..." if len(rounds) > 6 else ""),
                     mean_text(test, 0), "-" if best is None else f"{mean_text(test, test.rounds[best])} at "
                                                            f"{pct(test.sparsity[best], 2)}"))
    blocks.append(Table(("group", "runs", "setting", "n", "status", "rounds", "dense test acc", "best mean test acc"),
                        rows, "Each group: its runs, the fields that set it apart (all of them under Settings), how "
                              "far its runs got, dense and best test accuracy."))
    return blocks


# ---------------------------------------------------------------------------- 1. sparse double descent


def double_descent_section(records: list[RunRecord], groups: list[SeedGroup]) -> list[Any]:
    blocks: list[Any] = [Heading("1. Sparse double descent", anchor="double-descent"),
                         Text("The paper: under label noise, test accuracy against sparsity falls (critical phase) "
                              "where the network stops fitting the noisy labels, then rises above the dense "
                              "network's (sweet phase), then collapses.")]
    with_rounds = [r for r in records if r.rounds]
    if not with_rounds:
        return blocks + [Text("No run has a finished round yet, so there is no curve. Let the runs train "
                              "(`sdd-tui resume ID` continues a stopped one), then write the report again.",
                              "missing")]
    figure = figure_one(with_rounds, panels=("test_acc", "best_test_acc", "train_acc", "noisy_memorized"),
                        size=(8.0, 5.0), title=figure_title("Sparse double descent", groups))
    blocks.append(Figure(figure, "double-descent", "Last-epoch and best-epoch test accuracy, train accuracy on "
                                                   "the noisy labels and the noisy labels memorised, against "
                                                   "sparsity; bands: ± sample std over seeds; shading: phases of "
                                                   "the first group; dashed: reinit branch, dotted: random prune."))
    rows, bands, spans = [], [], []
    for group in groups:
        phases, test = group_phases(group), group_curve(group, "test_acc")
        leaves = phases.get("train_leaves")
        verdict = "yes" if phases.get("double_descent") else f"no: {phases.get('reason')}"
        rows.append((printable(group.label), point_text(test, phases.get("dense")), point_text(test, phases.get("dip")),
                     point_text(test, phases.get("peak")), point_text(test, phases.get("collapse")),
                     f"{pct(leaves['sparsity'], 2)} (round {leaves['round']})" if leaves else "-", verdict))
        if phases.get("phases"):
            bands.append(Bands(f"{printable(group.label)}: phases over rounds {phases['phases'][0]['from_round']}-"
                               f"{phases['phases'][-1]['to_round']}", tuple(phases["phases"])))
            by_name = {span["name"]: span for span in phases["phases"]}
            spans.append((printable(group.label), *(_span_cell(by_name.get(name)) for name in PHASE_COLUMNS)))
    blocks.append(Table(("group", "dense", "critical dip", "sweet peak", "collapse", "train acc leaves ~100%",
                         "double descent"), rows, "Phases of each group's mean curve (`sdd-tui analyze ID` gives "
                                                  "one run's): accuracy as mean ± std over seeds at that round."))
    if spans:
        blocks.append(Table(("group", *PHASE_COLUMNS), spans, "Phase spans: rounds and sparsity."))
        blocks += bands
    else:
        blocks.append(Text("No group shows all phases, so there are no phase bands: a curve needs a critical dip "
                           "and a sweet peak of 2 points or more (more rounds, or more noise, usually show them).",
                           "missing"))
    blocks += _reference_blocks(groups)
    return blocks


def _span_cell(span: dict[str, Any] | None) -> str:
    if not span:
        return "-"
    return (f"rounds {span['from_round']}-{span['to_round']} ({pct(span['from_sparsity'], 2)} to "
            f"{pct(span['to_sparsity'], 2)})")


def _reference_blocks(groups: list[SeedGroup]) -> list[Any]:
    blocks: list[Any] = [Heading("The paper's numbers", level=3)]
    for group in groups:
        reference = reference_for(group.records[0].config)
        if reference is None:
            blocks.append(Text(f"{printable(group.label)}: no reference for this setting.", "missing"))
            continue
        rows = reference_rows(reference, group_curve(group, "test_acc"), group_phases(group))
        blocks.append(Table(("point", "paper", "this group (mean)", "difference (points)"), rows,
                            f"{printable(group.label)} against {reference['setting']}. Source: "
                            f"{reference['source']}.", numeric=(3,)))
    covered = "; ".join(ref["setting"] for ref in references())
    blocks.append(Text(f"The reference table shipped with sdd-tui covers: {covered}."))
    return blocks


# ---------------------------------------------------------------------------- provenance


def provenance_section(records: list[RunRecord]) -> list[Any]:
    rows = []
    for record in records:
        p = record.provenance or {}
        git = p.get("git") or {}
        commit = f"{str(git.get('commit'))[:12]}{' (dirty)' if git.get('dirty') else ''}" if git else "-"
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.started)) if record.started else "-"
        rows.append((record.id, printable(record.name or ""), display_status(record),
                     flatten(record.config).get("runtime.seed"), started, record.device or "-",
                     p.get("sdd_tui") or "-", commit, p.get("host") or "-",
                     f"torch {p.get('torch')}" if p.get("torch") else "-"))
    return [Heading("Provenance", anchor="provenance"),
            Table(("run", "name", "status", "seed", "started", "device", "sdd-tui", "git", "host", "library"), rows,
                  "Where each run came from (`sdd-tui runs show ID` prints all of it).")]



# ---------------------------------------------------------------------------- writing


def report_format(path: Path, fmt: str | None) -> str:
    """--format, else what the file name says: `.md` is Markdown, anything else HTML."""
    if fmt is not None:
        return fmt
    return "md" if Path(path).suffix.lower() in (".md", ".markdown") else "html"


def write_report(selection: Selection, path: Path, fmt: str | None = None) -> Path:
    """Build the report of `selection` and write it to `path` (HTML, or Markdown with a figures folder)."""
    version = package_version("sdd-tui") or "?"
    fmt = report_format(path, fmt)
    if fmt not in ("html", "md"):
        raise SddError(f"--format {fmt!r}: use html or md")
    return write_page(build_report(selection, version), path, fmt, f"sdd-tui {version}")
