"""The report's later sections (`core.analysis.report` builds the page): learning distance, minima flatness, winning
tickets, the settings that differ, and the commands that reproduce each run. Each returns blocks of
core.analysis.report_page; where a piece is missing, its blocks say so and give the command that adds it.
"""

from __future__ import annotations

import functools
import json
import shlex
from pathlib import Path
from typing import Any

from ..errors import SddError
from ..format import pct, printable
from ..history.grouping import differing_fields, experiment_fields, flatten
from ..history.records import RunRecord, SweepRecord
from ..paths import RunPaths
from .figures import SeedGroup, figure_one, group_phases, interpolation_figure
from .report_page import Commands, Figure, Heading, Table, Text
from .report_stats import Correlation, distance_correlations, duels, mean_text, ticket_curves

MAX_COMMANDS = 12  # lines of suggested commands before "... and N more runs"
KEY_SETTINGS = ("data.name", "model.name", "noise.kind", "noise.rate", "prune.method", "prune.scope",
                "prune.fraction", "prune.rounds", "prune.schedule", "retrain.mode", "retrain.rewind_iteration",
                "train.epochs", "train.batch_size", "train.optimizer", "train.lr", "train.momentum",
                "train.weight_decay")


def figure_title(what: str, groups: list[SeedGroup]) -> str:
    """A figure's title: what it shows, and the setting when there is one (else how many)."""
    if len(groups) != 1:
        return f"{what}: {len(groups)} settings"
    config = groups[0].records[0].config
    noise = config.get("noise", {})
    return (f"{what}: {config.get('model', {}).get('name', '?')} on {config.get('data', {}).get('name', '?')}, "
            f"{noise.get('kind', '?')} noise {100 * (noise.get('rate') or 0):.0f}%, "
            f"{config.get('retrain', {}).get('mode', '?')}")


def _has(records: list[RunRecord], metric: str) -> bool:
    return any(r.get(metric) is not None for record in records for r in record.rounds)


def _cut(lines: list[str]) -> list[str]:
    """At most MAX_COMMANDS lines; then how many were left out."""
    left = len(lines) - MAX_COMMANDS
    return lines if left <= 0 else lines[:MAX_COMMANDS] + [f"# ... and {left} more"]


# ---------------------------------------------------------------------------- 2. learning distance


def distance_section(records: list[RunRecord], groups: list[SeedGroup]) -> list[Any]:
    blocks: list[Any] = [Heading("2. Learning distance", anchor="learning-distance"),
                         Text("The paper: the learning distance ||w - w0|| (pruned weights counted as 0) follows "
                              "the test accuracy curve over sparsity.")]
    if not _has(records, "learning_distance"):
        return blocks + [Text("No round recorded a learning distance (analysis.learning_distance was off). New "
                              "runs record it by default; start them again with "
                              "`--set analysis.learning_distance=true`.", "missing")]
    measured = [r for r in records if _has([r], "learning_distance")]
    blocks.append(Figure(figure_one(measured, panels=("learning_distance", "test_acc"), size=(8.0, 5.0),
                                    title=figure_title("Learning distance", groups)),
                         "learning-distance", "Learning distance (top) beside test accuracy (bottom), against "
                                              "sparsity; mean ± sample std over seeds."))
    rows = []
    for group in groups:
        for found in distance_correlations(group, group_phases(group)):
            rows.append((printable(group.label), found.over, found.count, _coefficient(found, "spearman"),
                         _coefficient(found, "pearson")))
    blocks.append(Table(("group", "over", "n (rounds)", "Spearman rho", "Pearson r"), rows,
                        "Correlation of learning distance and test accuracy over the group's mean curves (one "
                        "point per round), over all rounds and within each phase; positive: they rise and fall "
                        "together.", numeric=(2, 3, 4)))
    return blocks


def _coefficient(found: Correlation, kind: str) -> str:
    value = getattr(found, kind)
    return found.why_not if value is None else f"{value:+.2f}"


# ---------------------------------------------------------------------------- 3. minima flatness


def flatness_section(records: list[RunRecord], groups: list[SeedGroup], home: Path | None) -> list[Any]:
    blocks: list[Any] = [Heading("3. Minima flatness", anchor="flatness"),
                         Text("The paper asks whether pruning helps by finding flatter minima: it re-dense trains "
                              "a sparse solution (pruned weights restored at 0) and follows the loss along the "
                              "line w(a) = (1 - a) w_sparse + a w_redense. It finds that flatness does not explain "
                              "sparse double descent.")]
    analysed = [(record, key) for record in records for key in sorted(record.analyses or {})
                if (key == "redense" or key.startswith("redense_")) and record.analyses.get(key)]
    if not analysed:
        return blocks + _flatness_missing(groups, home)
    for record, key in analysed:
        branch = "main" if key == "redense" else key.removeprefix("redense_")
        results = sorted(record.analyses[key].values(), key=lambda r: r.get("round", 0))
        blocks.append(Heading(f"{printable(record.name or '')} ({record.id}), {branch} branch", level=3))
        blocks.append(Figure(interpolation_figure(record, branch, size=(10.0, 3.6)), f"flatness-{record.id}-{branch}",
                             "Loss and accuracy from the sparse solution (a = 0) to the re-dense one (a = 1); "
                             "solid: train, dashed: test."))
        blocks.append(Table(("round", "sparsity", "re-dense settings", "sparse test / train", "re-dense test / train",
                             "train loss at a=0 / highest (at a) / a=1"), [_flatness_row(r) for r in results],
                            "Re-dense settings as `sdd-tui analyze --redense` ran them."))
    return blocks


def _flatness_row(result: dict[str, Any]) -> tuple[Any, ...]:
    line = result.get("interpolation") or []
    worst = max(line, key=lambda p: p["train_loss"]) if line else None
    sparse, dense = result.get("sparse") or {}, result.get("redense") or {}
    settings = (f"{result.get('epochs')} epoch(s) at lr {result.get('lr'):g}, batch norm {result.get('bn')}, "
                f"{len(line)} points" if result.get("lr") is not None else f"{result.get('epochs')} epoch(s)")
    losses = (f"{line[0]['train_loss']:.3f} / {worst['train_loss']:.3f} (a={worst['alpha']:.2f}) / "
              f"{line[-1]['train_loss']:.3f}" if worst else "-")
    return (result.get("round"), pct(result.get("sparsity"), 2), settings,
            f"{pct(sparse.get('test_acc'))} / {pct(sparse.get('train_acc'))}",
            f"{pct(dense.get('test_acc'))} / {pct(dense.get('train_acc'))}", losses)


def stored_rounds(home: Path | None, record: RunRecord) -> list[int]:
    """The rounds whose weights are kept in the run's folder (what `analyze` and `branch` read)."""
    if home is None:
        return []
    folder = RunPaths(home, record.id).rounds_dir
    names = [p.stem.removeprefix("round-") for p in folder.glob("round-*.pt")] if folder.is_dir() else []
    return sorted(int(n) for n in names if n.isdigit())


def suggested_rounds(group: SeedGroup, stored: list[int]) -> list[int]:
    """Rounds worth analysing: a light one, the dip and the peak (else three spread over the stored rounds)."""
    phases = group_phases(group)
    wanted = [r for r in (1, (phases.get("dip") or {}).get("round"), (phases.get("peak") or {}).get("round"))
              if r in stored]
    if len(wanted) < 2:
        pruned = [r for r in stored if r > 0] or stored
        wanted = sorted({pruned[0], pruned[len(pruned) // 2], pruned[-1]}) if pruned else []
    return list(dict.fromkeys(wanted))


def _flatness_missing(groups: list[SeedGroup], home: Path | None) -> list[Any]:
    lines, count = [], 0
    for group in groups:
        record = group.records[0]
        stored = stored_rounds(home, record)
        if not stored:
            continue
        count += 1
        rounds = ",".join(map(str, suggested_rounds(group, stored)))
        lines.append(shlex.join(["sdd-tui", "analyze", record.id, "--redense", "--rounds", rounds]))
    if not lines:
        return [Text("No round was analysed, and no run here keeps its rounds' weights (the rounds/ folder of the "
                     "run), so none can be: run the experiment again and analyse it with "
                     "`sdd-tui analyze ID --redense --rounds 5,10,20`.", "missing")]
    return [Text("No round was analysed yet. Add it (re-dense training, then 101 interpolation points; a light "
                 "round, the critical dip and the sweet peak of the group's first run):", "missing"),
            Commands(tuple(_cut(lines)))]


# ---------------------------------------------------------------------------- 4. winning tickets


def tickets_section(records: list[RunRecord], groups: list[SeedGroup], home: Path | None) -> list[Any]:
    blocks: list[Any] = [Heading("4. Winning tickets may not always win", anchor="tickets"),
                         Text("The paper: a random reinitialisation of the ticket's mask also shows sparse double "
                              "descent, shifted to lower sparsity, so at some sparsities it beats the ticket.")]
    compared = [(group, ticket_curves(group)) for group in groups]
    compared = [(group, curves) for group, curves in compared if curves.reinit.rounds and curves.ticket.rounds]
    if not compared:
        return blocks + _tickets_missing(records, home)
    with_branches = [r for group, _ in compared for r in group.records]
    blocks.append(Figure(figure_one(with_branches, panels=("test_acc",), size=(8.0, 6.0),
                                    title=figure_title("Ticket and reinit", [g for g, _ in compared])), "tickets",
                         "Test accuracy of the ticket (solid), the random reinit (dashed) and random pruning "
                         "(dotted, where trained), against sparsity; mean ± sample std over seeds."))
    rows, findings = [], []
    for group, curves in compared:
        fights = duels(curves)
        wins = [d for d in fights if d.points > 0]
        findings.append(_ticket_finding(group, fights, wins))
        random_of = dict(zip(curves.random_prune.rounds, curves.random_prune.mean))
        for duel in wins:
            rows.append((printable(group.label), duel.round, pct(duel.sparsity, 2),
                         mean_text(curves.ticket, duel.round), mean_text(curves.reinit, duel.round),
                         f"{duel.points:+.1f}", pct(random_of.get(duel.round))))
    blocks += [Text(text, "finding") for text in findings]
    if rows:
        blocks.append(Table(("group", "round", "sparsity", "ticket", "reinit", "reinit - ticket (points)",
                             "random prune"), rows, "Rounds where the reinit beats the ticket (group means).",
                            numeric=(1, 5)))
    missing = [g for g in groups if all(g is not other for other, _ in compared)]
    if missing:
        blocks.append(Text(", ".join(printable(g.label) for g in missing) + ": no reinit branch to compare.",
                           "missing"))
        blocks += _tickets_missing([r for g in missing for r in g.records], home)[1:]
    return blocks


def _ticket_finding(group: SeedGroup, fights, wins) -> str:
    if not wins:
        return f"{printable(group.label)}: the ticket wins or ties at all {len(fights)} rounds compared."
    best = max(wins, key=lambda d: d.points)
    sparsities = ", ".join(pct(d.sparsity, 2) for d in wins[:8]) + (" ..." if len(wins) > 8 else "")
    return (f"{printable(group.label)}: the reinit beats the ticket at {len(wins)} of {len(fights)} rounds "
            f"(sparsity {sparsities}), by up to {best.points:.1f} points (round {best.round}).")


def _tickets_missing(records: list[RunRecord], home: Path | None) -> list[Any]:
    lines, count = [], 0
    for record in records:
        if not stored_rounds(home, record):
            continue
        count += 1
        has = {key for r in record.rounds for key in ("reinit", "ticket", "random_prune")
               if isinstance(r.get(key), dict)}
        if not has & {"reinit", "ticket"}:
            lines.append(shlex.join(["sdd-tui", "branch", record.id, "reinit"]))
        if "random_prune" not in has:
            lines.append(shlex.join(["sdd-tui", "branch", record.id, "random-prune"]))
    if not lines:
        return [Text("No run has a reinit branch, and no run here keeps its rounds' weights to train one on; "
                     "start new runs with `--set retrain.compare_reinit=true`.", "missing")]
    return [Text("No run has a reinit branch. Train one (and random pruning beside it) on the stored rounds of "
                 "a finished run, or start new runs with `--set retrain.compare_reinit=true`:", "missing"),
            Commands(tuple(_cut(lines)))]


# ---------------------------------------------------------------------------- settings and reproduction


def settings_section(groups: list[SeedGroup], names: dict[int, str]) -> list[Any]:
    configs = [g.records[0].config for g in groups]
    changed = differing_fields(configs)
    blocks: list[Any] = [Heading("Settings", anchor="settings")]
    if changed:
        rows = [(key, *(_value(experiment_fields(c).get(key)) for c in configs)) for key in changed]
        blocks.append(Table(("field", *(names[id(g)] for g in groups)), rows,
                            "The fields that differ between groups (G1, G2, ... as in the Overview)."))
    else:
        runs = sum(len(g.records) for g in groups)
        blocks.append(Text("One run: no other setting to compare." if runs == 1 else
                           "One setting: every run differs from the others only by seed (and how it ran)."))
    shared = experiment_fields(configs[0]) if configs else {}
    rows = [(key, _value(shared[key])) for key in KEY_SETTINGS if key in shared and key not in changed]
    blocks.append(Table(("field", "value"), rows, "Main settings every group shares (`sdd-tui runs show ID --json` "
                                                  "lists all)."))
    seeds = sorted({flatten(r.config).get("runtime.seed") for g in groups for r in g.records}, key=str)
    blocks.append(Text(f"Seeds: {', '.join(map(str, seeds))}."))
    return blocks


def _value(value: Any) -> str:
    return printable(value if isinstance(value, str) else json.dumps(value))


@functools.lru_cache(maxsize=32)
def _preset_fields(preset: str) -> dict[str, Any] | None:
    """A preset's flattened config as it is today; None for a preset renamed or removed since."""
    from ..config import resolve_config

    try:
        return flatten(resolve_config(preset).model_dump(mode="json"))
    except SddError:
        return None


def preset_command(record: RunRecord) -> list[str] | None:
    """`sdd-tui --preset P --set ...` giving the run's config from today's preset; None where it cannot."""
    preset, config = record.preset, record.config
    base = _preset_fields(preset) if preset and config else None
    if base is None:
        return None
    words = ["sdd-tui", "--preset", preset]
    for key, value in flatten(config).items():
        if key in ("name", "description") or json.dumps(base.get(key)) == json.dumps(value):
            continue
        if value is None:  # TOML has no null: only --from-run gives it back
            return None
        words += ["--set", f"{key}={json.dumps(value, ensure_ascii=False)}"]
    return words


def sweep_command(sweep: SweepRecord) -> str:
    words = ["sdd-tui", "sweep"]
    if sweep.preset:
        words += ["--preset", sweep.preset]
    elif sweep.config_file:
        words += ["--config", sweep.config_file]
    for text in sweep.overrides:
        words += ["--set", text]
    for key, values in (sweep.grid or {}).items():
        words += ["--grid", f"{key}={','.join(values)}"]
    words += ["--seeds", ",".join(map(str, sweep.seeds))]
    if sweep.levels:
        words += ["--levels", ",".join(map(str, sweep.levels))]
    return shlex.join(words)


def reproduce_section(records: list[RunRecord], sweeps: list[SweepRecord]) -> list[Any]:
    blocks: list[Any] = [Heading("Reproduce", anchor="reproduce"),
                         Text("Each run's settings from its preset as it is today (`--set` for every field that "
                              "differs), and `--from-run`, which starts a new run with the stored config in the "
                              "same home. Same config, seed and device: the same curve.")]
    for sweep in sweeps:
        blocks += [Text(f"Sweep {sweep.id}, all its members at once:"), Commands((sweep_command(sweep),))]
    lines = []
    for record in records:
        started = (record.provenance or {}).get("command")
        lines.append(f"# {record.id} {printable(record.name or '')}"
                     + (f" (started as: {printable(started)})" if started else ""))
        command = preset_command(record)
        if command:
            lines.append(shlex.join(command))
        lines.append(shlex.join(["sdd-tui", "--from-run", record.id]))
    blocks.append(Commands(tuple(lines)))
    return blocks
