"""The run history: `sdd-tui runs` (list and select), `runs show`, `runs diff`, `runs export`,
`runs tag` / `untag` / `note`, `runs delete`.

Listing and selecting read store.json's summaries alone (no run folder, no torch): 10,000 runs list
in well under a second. Tables are plain text, not Rich: a Rich table of 10,000 rows takes a minute.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from sdd_tui.cli.options import HOME, open_store, resolve_home, user_errors
from sdd_tui.core.errors import SddError

if TYPE_CHECKING:
    from sdd_tui.core.history.records import RunRecord

app = typer.Typer(help="The run history: list, select, show, compare, export, tag, note, delete.",
                  rich_markup_mode=None)

WHERE = typer.Option([], "--where", "-w", help="Only runs whose FIELD=VALUE (also != < <= > >=), e.g. "
                                               "noise.rate=0.4 or best_acc>0.8; repeat to narrow")
STATUS = typer.Option([], "--status", help="Only runs with this status (repeat for several)")
TAG = typer.Option([], "--tag", "-t", help="Only runs with this tag (repeat: all of them)")
LIMIT = 100  # rows `runs` prints by default: a lab's 10,000 runs are a query away, not a scroll away
LIST_COLUMNS = ("id", "name", "status", "seed", "rounds", "noise", "mode", "dense", "best", "at sparsity", "started",
                "tags", "note")  # what tells look-alike runs apart comes first, as in the app
WIDEST = {"name": 32, "note": 40, "tags": 30}


def shown(text: Any) -> str:
    """User text as one line of plain text (None as nothing): control characters escaped, never sent raw."""
    from sdd_tui.core.format import printable

    return "" if text is None else printable(text)


def plain_table(columns: tuple[str, ...], rows: list[tuple[str, ...]], right: bool = False) -> str:
    """Columns two spaces apart, left-aligned (`right`: right-aligned, for numbers); long names and notes
    cut with '…'."""
    cells = [list(column) for column in zip(*rows)] if rows else [[] for _ in columns]
    for index, name in enumerate(columns):
        widest = WIDEST.get(name)
        if widest:
            cells[index] = [c if len(c) <= widest else c[: widest - 1] + "…" for c in cells[index]]
    widths = [max([len(name)] + [len(c) for c in column]) for name, column in zip(columns, cells)]
    template = "  ".join(f"{{:{'>' if right else '<'}{width}}}" for width in widths)
    lines = [template.format(*columns).rstrip()]
    lines += [template.format(*row).rstrip() for row in zip(*cells)]
    return "\n".join(lines)


def list_row(doc: dict[str, Any], status: str) -> tuple[str, ...]:
    from sdd_tui.core.format import first_line, noise_short, pct

    s = doc["summary"]
    started = time.strftime("%m-%d %H:%M", time.localtime(doc.get("started") or 0))
    return (doc["id"], shown(doc.get("name")), status, str(s.get("seed", "?")),
            f"{s.get('rounds_done')}/{s.get('rounds_total')}", noise_short(s.get("noise_kind"), s.get("noise_rate")),
            shown(s.get("retrain_mode") or "?"), pct(s.get("dense_acc")), pct(s.get("best_acc")),
            pct(s.get("best_sparsity"), 2), started, shown(",".join(doc.get("tags") or ())),
            shown(first_line(doc.get("note"))))


def select(store, where: list[str], statuses: list[str], tags: list[str], sweep: str | None = None) -> list[dict]:
    from sdd_tui.core.history.query import RunQuery

    return RunQuery.parse_in(store, where, statuses, tags, sweep).select(store.summaries())


def warn_bad_records(store) -> None:
    bad = store.bad_records()
    if bad:
        typer.echo(f"warning: {len(bad)} record(s) in {store.path} are of the wrong shape and not listed; "
                   f"`sdd-tui doctor` lists them", err=True)


@app.callback(invoke_without_command=True)
@user_errors
def runs_list(
    ctx: typer.Context,
    where: list[str] = WHERE,
    status: list[str] = STATUS,
    tag: list[str] = TAG,
    sweep: Optional[str] = typer.Option(None, "--sweep", help="Only the members of this sweep"),
    limit: int = typer.Option(LIMIT, "--limit", "-n", min=1, help="Show the newest N runs (--json lists all)"),
    show_all: bool = typer.Option(False, "--all", "-a", help="Show every run"),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of every selected run"),
    home: Optional[Path] = HOME,
) -> None:
    """Runs, newest first (the newest 100 unless --limit or --all); --where, --status, --tag and --sweep
    select."""
    if ctx.invoked_subcommand:
        ctx.obj = {"home": resolve_home(ctx, home)}
        return
    from sdd_tui.core.history.store import display_status

    store = open_store(ctx, home)
    docs = select(store, where, status, tag, sweep)
    warn_bad_records(store)
    if as_json:
        rows = [{"id": d["id"], "name": d.get("name"), "status": display_status(d), "preset": d.get("preset"),
                 "started": d.get("started"), "ended": d.get("ended"), **d["summary"], "tags": d.get("tags") or [],
                 "note": d.get("note") or "", "sweep": d.get("sweep")} for d in docs]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not docs:
        selecting = where or status or tag or sweep
        typer.echo("no run matches" if selecting else "no runs yet; start one with: sdd-tui --preset digits-noise40")
        return
    shown_docs = docs if show_all else docs[:limit]
    typer.echo(plain_table(LIST_COLUMNS, [list_row(d, display_status(d)) for d in shown_docs]))
    if len(shown_docs) < len(docs):
        typer.echo(f"... and {len(docs) - len(shown_docs):,} older run(s): --all shows them, --where narrows")


@app.command("show")
@user_errors
def runs_show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    as_json: bool = typer.Option(False, "--json", help="Print the documented JSON object"),
    home: Optional[Path] = HOME,
) -> None:
    """One run: its settings, tags, note and provenance, and a row per round."""
    from sdd_tui.core.analysis.results import run_json
    from sdd_tui.core.history.store import display_status

    record = open_store(ctx, home).run(run_id)
    status = display_status(record)
    if as_json:
        typer.echo(json.dumps(run_json(record, status), indent=2))
        return
    print_run(record, status)


def print_run(record: RunRecord, status: str) -> None:
    """Plain lines and a plain table of rounds: quick to print (no Rich), easy to grep and to paste."""
    from sdd_tui.core.analysis.phases import detect_phases, phases_lines
    from sdd_tui.core.analysis.results import branch_phases
    from sdd_tui.core.format import ROUND_COLUMNS, result_text, round_cells
    from sdd_tui.core.history.run_index import summary

    s = summary(record)  # the summary the store keeps, computed the same way
    say = typer.echo  # every user text below goes through shown(): printable, never markup
    say(f"{record.id}  {shown(record.name)}  {status}  on {record.device}")
    say(f"{s['model']} on {s['dataset']}, noise {s['noise']}, {s['rounds_done']}/{s['rounds_total']} rounds; "
        + result_text(s))
    if record.tags:
        say("tags: " + shown(", ".join(record.tags)))
    if record.note:
        say("note: " + shown(record.note))
    for line in provenance_lines(record.provenance or {}):
        say(line)
    if record.error:
        say(f"error: {shown(record.error)}")
    if record.rounds:
        rounds = sorted(record.rounds, key=lambda r: r["round"])
        say("rounds\n" + plain_table(ROUND_COLUMNS, [round_cells(r) for r in rounds], right=True))
        for line in phases_lines(detect_phases(record.rounds)):
            say(line)
        for branch, phases in branch_phases(record.rounds).items():
            say(f"{branch} branch: " + "; ".join(phases_lines(phases)))


def provenance_lines(provenance: dict[str, Any]) -> list[str]:
    """Where the run came from, in three lines (nothing for a run recorded before provenance was kept)."""
    if not provenance:
        return []
    p = provenance.get
    gpu = f"{p('gpu_count')} x {p('gpu')}" if p("gpu") else f"CPU {p('cpu')} ({p('cpu_count')} cores)"
    git = p("git") or {}
    source = (f"git {str(git.get('commit'))[:12]}{' (dirty)' if git.get('dirty') else ''} in {git.get('root')}"
              if git else f"not a git checkout: {p('cwd')}")
    lines = [f"provenance: sdd-tui {p('sdd_tui') or '?'}, Python {p('python')}, torch {p('torch')}, "
             f"torchvision {p('torchvision')}, CUDA {p('cuda') or '-'}, cuDNN {p('cudnn') or '-'}",
             f"  on {p('host')}: {gpu}; {source}",
             f"  command: {shown(p('command'))}"]
    if p("plugins"):
        lines.append(f"  plugins: {shown(json.dumps(p('plugins')))}")
    return lines


@app.command("diff")
@user_errors
def runs_diff(
    ctx: typer.Context,
    first: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    second: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of {field, a, b}"),
    home: Optional[Path] = HOME,
) -> None:
    """The config fields, preset and provenance that differ between two runs."""
    from sdd_tui.core.history.run_diff import diff_runs

    store = open_store(ctx, home)
    a, b = store.run(first), store.run(second)
    rows = diff_runs(a, b)
    if as_json:
        typer.echo(json.dumps([{"field": f, "a": x, "b": y} for f, x, y in rows], indent=2))
        return
    if not rows:
        typer.echo(f"{a.id} and {b.id}: same config, preset and provenance")
        return
    cells = [(f, shown(json.dumps(x) if not isinstance(x, str) else x),
              shown(json.dumps(y) if not isinstance(y, str) else y)) for f, x, y in rows]
    typer.echo(plain_table(("field", a.id, b.id), cells))


@app.command("export")
@user_errors
def runs_export(
    ctx: typer.Context,
    run_id: Optional[str] = typer.Argument(None, help="One run (id or unique prefix): its rounds, as before"),
    all_runs: bool = typer.Option(False, "--all", help="Every run"),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="The members of this sweep"),
    where: list[str] = WHERE,
    status: list[str] = STATUS,
    tag: list[str] = TAG,
    epochs: bool = typer.Option(False, "--epochs", help="Add a row per epoch (from each run's events.jsonl)"),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv | json"),
    output: Path = typer.Option(..., "--output", "-o", help="File to write"),
    home: Optional[Path] = HOME,
) -> None:
    """Write runs as a table: a row per run and round, config fields as columns (the rows of load_runs)."""
    from sdd_tui.core.analysis.results import csv_text, run_json
    from sdd_tui.core.analysis.run_table import csv_of, load_rows
    from sdd_tui.core.history.store import display_status

    if fmt not in ("csv", "json"):
        raise SddError(f"--format {fmt!r}: use csv or json")
    store = open_store(ctx, home)
    if run_id is not None:
        record = store.run(run_id)
        text = csv_text(record) if fmt == "csv" else json.dumps(run_json(record, display_status(record)), indent=2)
    elif all_runs or sweep or where or status or tag:
        from sdd_tui.core.history.query import RunQuery

        rows = load_rows(store, RunQuery.parse_in(store, where, status, tag, sweep), epochs)
        text = csv_of(rows) if fmt == "csv" else json.dumps(rows, indent=1)
    else:
        raise SddError("say which runs: a RUN_ID, --all, --sweep ID, or --where FIELD=VALUE (--status, --tag)")
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise SddError(f"cannot write {output} ({error.strerror}); choose another -o path") from None
    typer.echo(f"wrote {output}")


@app.command("tag")
@user_errors
def runs_tag(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    tags: list[str] = typer.Argument(..., help="Tags to add: one word each"),
    home: Optional[Path] = HOME,
) -> None:
    """Tag a run (`sdd-tui runs --tag TAG` selects by tag)."""
    _change_tags(ctx, home, run_id, add=tags)


@app.command("untag")
@user_errors
def runs_untag(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    tags: list[str] = typer.Argument(..., help="Tags to remove"),
    home: Optional[Path] = HOME,
) -> None:
    """Remove tags from a run."""
    _change_tags(ctx, home, run_id, remove=tags)


def _change_tags(ctx: typer.Context, home: Path | None, run_id: str, add: list[str] = (), remove: list[str] = ()):
    """Check every tag first (a tag with a space changes nothing), then change them and say the run's tags."""
    from sdd_tui.core.history.query import check_tag

    add, remove = [check_tag(tag) for tag in add], [check_tag(tag) for tag in remove]
    doc = open_store(ctx, home).set_tags(run_id, add=add, remove=remove)  # the run's summary (store.json)
    typer.echo(f"{doc['id']}: tags {shown(', '.join(doc['tags'])) or '(none)'}")


@app.command("note")
@user_errors
def runs_note(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)"),
    text: str = typer.Argument(..., help="The note (its first line shows in `runs`; '' clears it)"),
    home: Optional[Path] = HOME,
) -> None:
    """Set a run's note."""
    doc = open_store(ctx, home).set_note(run_id, text)  # the run's summary (store.json)
    typer.echo(f"{doc['id']}: note {'set' if text else 'cleared'}")


@app.command("delete")
@user_errors
def runs_delete(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix of at least 4 characters)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (needed without a terminal)"),
    home: Optional[Path] = HOME,
) -> None:
    """Delete a run's record and folder (not while it runs)."""
    from sdd_tui.core.history.store import MIN_DELETE_ID

    if len(run_id) < MIN_DELETE_ID:
        raise SddError(f"run id {run_id!r} is too short to delete by; give at least {MIN_DELETE_ID} characters "
                       f"(`sdd-tui runs` lists the ids)")
    store = open_store(ctx, home)
    doc = store.find(run_id)  # the run's summary (store.json)
    if not yes:
        if not sys.stdin.isatty():
            raise SddError(f"not deleting run {doc['id']}: without a terminal to confirm, pass --yes")
        typer.confirm(f"delete run {doc['id']} ({shown(doc.get('name'))})?", abort=True)
    typer.echo(f"deleted {store.delete_run(doc['id'])}")
