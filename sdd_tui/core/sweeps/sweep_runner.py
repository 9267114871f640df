"""Running a sweep: create or resume its record, run the members on an engine, settle its status.

Any face can call `run_sweep`; it says what happens through `say(line)` (the CLI prints the lines).
The engines themselves live in core/sweeps/sweep_local.py (processes) and core/sweeps/sweep_ray.py (Ray tasks).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SddError
from ..events import Event, Message, RoundEnded, RunEnded, RunStarted
from ..format import pct, result_text
from ..history.records import RunRecord, SweepRecord
from ..history.run_index import summary
from ..history.store import Store
from .engine_options import EngineOptions, engine_options  # noqa: F401 (engine_options: the CLI's)
from .sweep import member_records, member_runs, member_status, sweep_status

Say = Callable[[str], None]
EXIT_CODES = {"finished": 0, "stopped": 130}  # of `sdd-tui sweep`; any other status exits 1


@contextlib.contextmanager
def holding_sweep(store: Store, sweep_id: str, doing: str = "resumed"):
    """The sweep's lock for as long as this process runs or resumes it: a second `sweep --resume` of the same
    sweep is one line naming the holder (two resumes once both trained every member). Released on any exit,
    kill -9 included (the OS drops the lock with the process)."""
    from filelock import FileLock, Timeout

    from ..atomic import atomic_write_text
    from ..paths import sweep_holder, sweep_lock

    lock_path = sweep_lock(store.home, sweep_id)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise SddError(f"sweep {sweep_id} is being {_holder(store, sweep_id)}; wait for it to end, or stop it "
                       f"first (Ctrl-C there, or `kill PID`)") from None
    except OSError as error:
        raise SddError(f"cannot lock sweep {sweep_id} in {lock_path.parent} ({error.strerror}); is it read-only?") \
            from None
    try:
        atomic_write_text(sweep_holder(store.home, sweep_id), f"{os.getpid()} {doing}", durable=False)
        yield
    finally:
        lock.release()


def _holder(store: Store, sweep_id: str) -> str:
    """'resumed by process 1234' from the holder's note (the lock file itself is emptied by each try)."""
    from ..paths import sweep_holder

    try:
        pid, doing = sweep_holder(store.home, sweep_id).read_text(encoding="utf-8").split(maxsplit=1)
    except (OSError, ValueError):
        return "run by another process"
    return f"{doing.strip()} by process {pid}"


def engine_session(options: EngineOptions):
    """A Ray connection for the whole sweep (an unreachable cluster fails before anything is stored)."""
    if options.engine != "ray":
        return contextlib.nullcontext()
    from .sweep_ray import ray_session

    return ray_session(options.address)


def run_sweep(store: Store, sweep: SweepRecord, members: list[dict[str, Any]], options: EngineOptions,
              say: Say, create: bool) -> str:
    """Store the sweep (`create`) or mark it running again, run `members` and return the sweep's status."""
    if create:
        store.create_sweep({**sweep.to_dict(), **options.record_fields()})
    store.update_sweep(sweep.id, status="running", pid=os.getpid(), host=socket.gethostname(),
                       **options.record_fields())
    say(f"sweep {sweep.id}: {len(members)} of {len(sweep.members)} member(s) to run, engine {options.engine}")
    with _sigterm_as_interrupt():
        if options.engine == "local":
            outcomes, interrupted = _run_local(store, sweep, members, options, say)
        else:
            from .sweep_ray import run_ray

            outcomes, interrupted = run_ray(
                store, sweep, members, options.address, worker_home=Path(options.worker_home),
                cpus_per_member=options.cpus_per_member, retries=options.retries,
                report=lambda member, event: _say_ray_event(say, member, event))
    return _settle(store, sweep, outcomes, interrupted)


def _settle(store: Store, sweep: SweepRecord, outcomes: dict[str, dict], interrupted: bool) -> str:
    records = member_records(store, sweep)
    errors = {**sweep.errors, **{run_id: outcome["error"] for run_id, outcome in outcomes.items()
                                 if run_id not in records and outcome.get("error")}}
    statuses = [member_status(records.get(m["run_id"])) for m in sweep.members]
    statuses = [("failed" if s == "queued" and m["run_id"] in errors else s) for s, m in zip(statuses, sweep.members)]
    status = sweep_status(statuses)
    if interrupted and status != "finished":
        status = "stopped"
    store.update_sweep(sweep.id, status=status, ended=time.time(), errors=errors)
    return status


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """`kill PID` stops a sweep the way Ctrl-C does."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_local(store: Store, sweep: SweepRecord, members: list[dict], options: EngineOptions, say: Say):
    from .sweep_local import launch_job, local_slots, run_local, settle_records, threads_per_member, visible_gpus

    slots = local_slots(visible_gpus(), options.max_parallel)
    threads = threads_per_member(os.cpu_count() or 1, len(slots))
    where = ", ".join(slots) if slots[0] else "devices as configured"
    unit = "job(s) (a member or a cohort)" if options.pack else "member(s)"
    say(f"{len(slots)} {unit} at a time ({where}); each member's output: <home>/runs/<id>/output.log")
    jobs = [[member] for member in members]
    if options.pack:
        plan = pack_plan(members, len(slots), options.pack_size)
        for line in plan.lines():
            say(line)
        jobs = plan.jobs(members)

    def report(kind: str, member: dict, detail: Any) -> None:
        if kind == "started":
            say(f"started  {member['run_id']}  {member['name']} on {detail}")
            return
        record = member_runs(store, [member]).get(member["run_id"])
        status = member_status(record) if record else f"exited {detail}"
        say(f"{status:<8} {member['run_id']}  {member['name']}{member_result_text(record)}")

    exit_codes, interrupted = run_local(
        jobs, slots, lambda job, device: launch_job(store, sweep.id, job, device, threads), report)
    settle_records(store, exit_codes)
    outcomes = {run_id: {"status": "failed", "error": _last_line(store, run_id)}
                for run_id, code in exit_codes.items() if code not in (0, 130)}
    return outcomes, interrupted


def pack_plan_lines(members: list[dict], max_parallel: int | None, pack_size: int) -> list[str]:
    """What `sdd-tui sweep --dry-run --pack` prints: the cohorts these members make on this machine's slots."""
    from .sweep_local import local_slots, visible_gpus

    return pack_plan(members, len(local_slots(visible_gpus(), max_parallel)), pack_size).lines()


def pack_plan(members: list[dict], slots: int, pack_size: int):
    """How `--pack` groups these members into cohorts (core.engine.cohort_plan), each one's config validated."""
    from ..engine.cohort_plan import plan_cohorts
    from .sweep import member_config

    return plan_cohorts(members, [member_config(m) for m in members], slots, pack_size)


def _last_line(store: Store, run_id: str) -> str:
    try:
        lines = store.paths(run_id).output_log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "member process failed before writing output"
    return next((line for line in reversed(lines) if line.strip()), "member process failed without output")


def member_result_text(record: RunRecord | None) -> str:
    """': dense 65.3%, best 80.6% at sparsity 99.3%' for a member with rounds, else ''."""
    if record is None or not record.rounds:
        return ""
    return f": {result_text(summary(record))}"


def _say_ray_event(say: Say, member: dict, event: Event) -> None:
    """A line when a Ray member starts, ends a round, warns, or ends."""
    name = member["name"]
    if isinstance(event, RunStarted):
        verb = f"resumed from round {event.resumed_from_round}" if event.resumed_from_round >= 0 else "started"
        say(f"{verb}  {event.run_id}  {name} on {event.device} @ {event.host}")
    elif isinstance(event, RoundEnded):
        r = event.result
        say(f"{name}: round {r['round']}/{event.rounds} sparsity {pct(r['sparsity'])} test {pct(r['test_acc'])}")
    elif isinstance(event, Message) and event.level != "info":
        say(f"{name}: {event.level}: {event.text}")
    elif isinstance(event, RunEnded):
        say(f"{event.status}  {event.run_id}  {name}" + (f": {event.error}" if event.error else ""))
