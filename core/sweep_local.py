"""The local engine: members as separate `sdd-tui sweep-member` processes, one per visible GPU at a time.

Which slot runs on which device is a pure function (`local_slots`, `member_device`); `run_local` is
a small queue that launches a member whenever a slot is free. A process is started in its own
session, so a Ctrl-C in the terminal reaches only this driver, which then asks each member to stop
(SIGINT: the member finishes its batch, keeps its checkpoint and records itself as stopped).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from core.spawn import sdd_tui_command, spawn
from core.store import Store

STOPPED_EXIT = 130  # what a member process returns after a clean stop (as `sdd-tui --preset` does)


class MemberProcess(Protocol):
    def poll(self) -> int | None: ...
    def send_signal(self, signum: int) -> None: ...
    def kill(self) -> None: ...


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def local_slots(gpu_count: int, max_parallel: int | None = None) -> list[str | None]:
    """The device of each concurrent slot: one slot per GPU (`cuda:K`), or one CPU slot (None: keep
    the member's own device). `max_parallel` caps the slots, or stacks several per GPU round-robin."""
    if gpu_count <= 0:
        return [None] * (max_parallel or 1)
    return [f"cuda:{index % gpu_count}" for index in range(max_parallel or gpu_count)]


def member_device(config_device: str, slot: str | None) -> str:
    """The device a member uses in a slot; a member whose config pins it to the CPU (or MPS) stays there."""
    if slot is None or config_device in ("cpu", "mps"):
        return config_device
    return slot


def threads_per_member(cpu_count: int, slot_count: int) -> int:
    """CPU threads for each of `slot_count` members running at once, so that together they fill the CPUs once."""
    return max(1, cpu_count // max(1, slot_count))


def member_command(home: Path, sweep_id: str, run_id: str, device: str) -> list[str]:
    return sdd_tui_command("sweep-member", sweep_id, run_id, "--device", device, "--home", str(home))


def launch_member(store: Store, sweep_id: str, member: dict[str, Any], device: str, threads: int) -> subprocess.Popen:
    """Start one member with `threads` CPU threads (unless OMP_NUM_THREADS or runtime.threads say otherwise);
    its output goes to runs/<id>/output.log."""
    return spawn(member_command(store.home, sweep_id, member["run_id"], device),
                 store.paths(member["run_id"]).output_log, env_defaults={"OMP_NUM_THREADS": str(threads)})


Report = Callable[[str, dict[str, Any], Any], None]  # ("started", member, device) / ("ended", member, exit code)


def run_local(
    members: list[dict[str, Any]],
    slots: list[str | None],
    launch: Callable[[dict[str, Any], str], MemberProcess],
    report: Report | None = None,
    poll_seconds: float = 0.5,
    grace_seconds: float = 60.0,
) -> tuple[dict[str, int], bool]:
    """Run every member, at most one per slot at a time. Returns (exit code by run id, interrupted).
    On KeyboardInterrupt nothing new starts; running members get SIGINT and `grace_seconds` to stop."""
    report = report or (lambda kind, member, detail: None)
    pending = deque(members)
    running: dict[int, tuple[dict[str, Any], MemberProcess]] = {}
    exit_codes: dict[str, int] = {}
    try:
        while pending or running:
            for slot in range(len(slots)):
                if slot not in running and pending:
                    member = pending.popleft()
                    device = member_device(member["config"]["runtime"]["device"], slots[slot])
                    running[slot] = (member, launch(member, device))
                    report("started", member, device)
            _collect(running, exit_codes, report)
            if running:
                time.sleep(poll_seconds)
    except KeyboardInterrupt:
        _stop_all(running, exit_codes, report, poll_seconds, grace_seconds)
        return exit_codes, True
    return exit_codes, False


def _collect(running, exit_codes: dict[str, int], report: Report) -> None:
    for slot, (member, process) in list(running.items()):
        code = process.poll()
        if code is not None:
            del running[slot]
            exit_codes[member["run_id"]] = code
            report("ended", member, code)


def _stop_all(running, exit_codes, report: Report, poll_seconds: float, grace_seconds: float) -> None:
    for _member, process in running.values():
        process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_seconds
    try:
        while running and time.monotonic() < deadline:
            _collect(running, exit_codes, report)
            time.sleep(poll_seconds)
    except KeyboardInterrupt:  # a second Ctrl-C: do not wait for the batch to end
        pass
    for member, process in running.values():
        process.kill()
        exit_codes[member["run_id"]] = -signal.SIGKILL
        report("ended", member, -signal.SIGKILL)
    running.clear()


def settle_records(store: Store, exit_codes: dict[str, int]) -> None:
    """A member process that died without recording its end (killed, crashed): mark its run
    stopped (killed by us or a signal) or failed (any other exit), so the record does not say running."""
    records = {record["id"]: record for record in store.summaries() if record["id"] in exit_codes}
    for run_id, code in exit_codes.items():
        record = records.get(run_id)
        if record is None or record.get("status") != "running":
            continue
        if code < 0 or code == STOPPED_EXIT:
            store.update_run(run_id, status="stopped", ended=time.time(), error="")
        else:
            store.update_run(run_id, status="failed", ended=time.time(), error=f"member process exited with code {code}")
