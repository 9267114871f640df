"""The local engine: members as separate `sdd-tui sweep-member` processes, one per visible GPU at a time.

A job is one member, or (with `--pack`) a cohort of members trained as one packed model by one
`sdd-tui sweep-cohort` process. Which slot runs on which device is a pure function (`local_slots`,
`member_device`); `run_local` is a small queue that launches a job whenever a slot is free. A process is started in its own
session, so a Ctrl-C in the terminal reaches only this driver, which then asks each member to stop
(SIGINT: the member finishes its batch, keeps its checkpoint and records itself as stopped).
"""

from __future__ import annotations

import glob
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..history.store import Store
from ..runs.spawn import sdd_tui_command, spawn

STOPPED_EXIT = 130  # what a member process returns after a clean stop (as `sdd-tui --preset` does)


class MemberProcess(Protocol):
    def poll(self) -> int | None: ...
    def send_signal(self, signum: int) -> None: ...
    def kill(self) -> None: ...


# What a GPU torch can use leaves in /dev or /proc: NVIDIA's driver, ROCm's (kfd), WSL's (dxg)
GPU_DEVICE_FILES = ("/dev/nvidia[0-9]*", "/proc/driver/nvidia/gpus/*", "/dev/kfd", "/dev/dxg")


def visible_gpus() -> int:
    """The GPUs torch sees; 0 without importing torch (2 to 3 s of a sweep's start on a 2-core machine) when
    no GPU driver left a device file."""
    if not any(glob.glob(pattern) for pattern in GPU_DEVICE_FILES):
        return 0
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


Job = list[dict[str, Any]]  # one member, or the members of one packed cohort


def member_command(home: Path, sweep_id: str, run_id: str, device: str) -> list[str]:
    return sdd_tui_command("sweep-member", sweep_id, run_id, "--device", device, "--home", str(home))


def cohort_command(home: Path, sweep_id: str, run_ids: list[str], device: str) -> list[str]:
    return sdd_tui_command("sweep-cohort", sweep_id, ",".join(run_ids), "--device", device, "--home", str(home))


def launch_job(store: Store, sweep_id: str, job: Job, device: str, threads: int) -> subprocess.Popen:
    """Start one member, or one cohort, with `threads` CPU threads (unless OMP_NUM_THREADS or runtime.threads
    say otherwise). A member's output goes to runs/<id>/output.log; a cohort's members write theirs there
    themselves, and the cohort's own lines go to runs/<first id>/cohort.log."""
    paths = store.paths(job[0]["run_id"])
    if len(job) == 1:
        command, log_path = member_command(store.home, sweep_id, job[0]["run_id"], device), paths.output_log
    else:
        command, log_path = cohort_command(store.home, sweep_id, [m["run_id"] for m in job], device), paths.cohort_log
    return spawn(command, log_path, env_defaults={"OMP_NUM_THREADS": str(threads)})


Report = Callable[[str, dict[str, Any], Any], None]  # ("started", member, device) / ("ended", member, exit code)


def run_local(
    jobs: list[Job],
    slots: list[str | None],
    launch: Callable[[Job, str], MemberProcess],
    report: Report | None = None,
    poll_seconds: float = 0.5,
    grace_seconds: float = 60.0,
) -> tuple[dict[str, int], bool]:
    """Run every job, at most one per slot at a time. Returns (exit code by member run id, interrupted).
    On KeyboardInterrupt nothing new starts; running jobs get SIGINT and `grace_seconds` to stop."""
    report = report or (lambda kind, member, detail: None)
    pending = deque(jobs)
    running: dict[int, tuple[Job, MemberProcess]] = {}
    exit_codes: dict[str, int] = {}
    try:
        while pending or running:
            for slot in range(len(slots)):
                if slot not in running and pending:
                    job = pending.popleft()
                    device = member_device(job[0]["config"]["runtime"]["device"], slots[slot])
                    running[slot] = (job, launch(job, device))
                    for member in job:
                        report("started", member, device)
            _collect(running, exit_codes, report)
            if running:
                time.sleep(poll_seconds)
    except KeyboardInterrupt:
        _stop_all(running, exit_codes, report, poll_seconds, grace_seconds)
        return exit_codes, True
    return exit_codes, False


def _collect(running, exit_codes: dict[str, int], report: Report) -> None:
    for slot, (job, process) in list(running.items()):
        code = process.poll()
        if code is not None:
            del running[slot]
            _ended(job, code, exit_codes, report)


def _ended(job: Job, code: int, exit_codes: dict[str, int], report: Report) -> None:
    for member in job:
        exit_codes[member["run_id"]] = code
        report("ended", member, code)


def _stop_all(running, exit_codes, report: Report, poll_seconds: float, grace_seconds: float) -> None:
    for _job, process in running.values():
        process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_seconds
    try:
        while running and time.monotonic() < deadline:
            _collect(running, exit_codes, report)
            time.sleep(poll_seconds)
    except KeyboardInterrupt:  # a second Ctrl-C: do not wait for the batch to end
        pass
    for job, process in running.values():
        process.kill()
        _ended(job, -signal.SIGKILL, exit_codes, report)
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
