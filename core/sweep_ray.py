"""The Ray engine: each member is a Ray task; its events stream back to the driver, which alone writes the store.

Ray is an optional extra and is imported only here, inside functions. A member task sends its events
in batches to an `EventRelay` actor (at once for RunStarted/RoundEnded/RunEnded, else every half
second); the driver drains the relay and feeds each member's events to a `MemberRecorder`.

A member whose worker or node dies is retried by Ray (`max_retries`) and resumes from its last
checkpoint, which it looks for under `worker_home/runs/<id>/`. That works when `worker_home` is the
same readable path on every node: a single machine, or a shared filesystem (NFS, a cluster's home
directories). Without one, a retried member starts over, which is slower but gives the same curve.

Ctrl-C: through the relay every running member is asked to stop after its batch (its checkpoint
stays) and every waiting one to return without starting; whatever has not returned within the grace
period (or at a second Ctrl-C) is force-cancelled (`ray.cancel(force=True)`). Every member that did
not finish is recorded as stopped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import SddError
from core.events import Event, RoundEnded, RoundStarted, RunEnded, RunStarted, event_from_dict
from core.store import Store

RAY_MISSING = "--engine ray needs Ray: pip install 'sdd-tui[ray]'"
FLUSH_AT_ONCE = (RunStarted, RoundEnded, RunEnded)


def import_ray():
    try:
        import ray
    except ImportError:
        raise SddError(RAY_MISSING) from None
    return ray


def ray_member_device(config_device: str, has_gpu: bool) -> str:
    """Inside a task with `num_gpus=1` Ray shows exactly one GPU (as cuda:0); a cpu-pinned member stays put."""
    if has_gpu and config_device not in ("cpu", "mps"):
        return "cuda"
    return config_device


class EventRelay:
    """Runs as a Ray actor: collects (run_id, events) batches from members; carries the stop request back."""

    def __init__(self) -> None:
        self._batches: list[tuple[str, list[dict[str, Any]]]] = []
        self._stop = False

    def put(self, run_id: str, events: list[dict[str, Any]]) -> bool:
        if events:
            self._batches.append((run_id, events))
        return self._stop

    def drain(self) -> list[tuple[str, list[dict[str, Any]]]]:
        batches, self._batches = self._batches, []
        return batches

    def request_stop(self) -> None:
        self._stop = True


class RelaySink:
    """The member task's sink: buffers events and sends them to the relay; a stop reply stops the run."""

    def __init__(self, relay, run_id: str, control, flush_seconds: float = 0.5):
        self.relay, self.run_id, self.control = relay, run_id, control
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._ticker = threading.Thread(target=self._tick, args=(flush_seconds,), daemon=True)
        self._ticker.start()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._buffer.append(event.to_dict())
        if isinstance(event, FLUSH_AT_ONCE):
            self.flush()

    def flush(self) -> None:
        """Send what is buffered (also when empty: the reply says whether to stop)."""
        import ray

        with self._lock:
            batch, self._buffer = self._buffer, []
            if ray.get(self.relay.put.remote(self.run_id, batch)):
                self.control.stop.set()

    def _tick(self, seconds: float) -> None:
        while not self._closed.wait(seconds):
            self.flush()

    def close(self) -> None:
        self._closed.set()
        self.flush()


def _crash_when_round_starts(sink: RelaySink, crash_round: int) -> Callable[[Event], None]:
    """Test hook: end this worker process abruptly, as a dying node would, when `crash_round` starts
    (the checkpoint of the round before it is on disk by then)."""

    def crashing(event: Event) -> None:
        sink(event)
        if isinstance(event, RoundStarted) and event.round == crash_round:
            sink.flush()
            os._exit(1)

    return crashing


def run_member(member: dict[str, Any], preset: str | None, worker_home: str, relay, has_gpu: bool,
               crash_round: int | None = None) -> dict[str, str]:
    """The Ray task: run (or resume, when a checkpoint exists) one member; returns its status and error."""
    from core.experiment import Experiment, checkpoint_exists
    from core.sweep import member_config
    from core.training import Control

    config = member_config(member)
    config.runtime.device = ray_member_device(config.runtime.device, has_gpu)
    home, run_id = Path(worker_home), member["run_id"]
    resume = checkpoint_exists(home, run_id)
    control = Control()
    relay_sink = RelaySink(relay, run_id, control)
    relay_sink.flush()
    if control.stop.is_set():  # the sweep was stopped while this member waited for a slot
        relay_sink.close()
        return {"status": "not started", "error": ""}
    sink = relay_sink if crash_round is None or resume else _crash_when_round_starts(relay_sink, crash_round)
    experiment = Experiment(config, sink, home, preset=preset, run_id=run_id, control=control, resume=resume)
    try:
        return {"status": experiment.run(), "error": ""}
    except SddError as error:
        return {"status": "failed", "error": str(error)}
    finally:
        relay_sink.close()


# ---------------------------------------------------------------------------- the driver


def connect(ray, address: str | None) -> bool:
    """Join the cluster at `address` (auto | ray://host:port), or start a local instance; True if started here."""
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"at {address}" if address else "locally"
        raise SddError(f"cannot start or reach a Ray cluster {where} ({str(error).splitlines()[0]}); "
                       "start one with `ray start --head`, or leave out --address for a local instance") from None
    return address is None


class RayDriver:
    """Launches the members as tasks and records their events; `run()` returns (outcomes, interrupted)."""

    def __init__(self, ray, store: Store, sweep: dict[str, Any], members: list[dict[str, Any]], *,
                 worker_home: Path, cpus_per_member: float = 1.0, retries: int = 3,
                 report: Callable[[dict[str, Any], Event], None] | None = None, poll_seconds: float = 0.2,
                 grace_seconds: float = 60.0, crash: tuple[str, int] | None = None):
        from core.sweep import MemberRecorder

        self.ray, self.store, self.sweep = ray, store, sweep
        self.members = {m["run_id"]: m for m in members}
        self.worker_home, self.cpus_per_member, self.retries = worker_home, cpus_per_member, retries
        self.report = report or (lambda member, event: None)
        self.poll_seconds, self.grace_seconds, self.crash = poll_seconds, grace_seconds, crash
        self.recorders = {run_id: MemberRecorder(store, sweep["id"]) for run_id in self.members}
        self.started: set[str] = set()
        self.outcomes: dict[str, dict[str, str]] = {}

    def run(self) -> tuple[dict[str, dict[str, str]], bool]:
        ray = self.ray
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        resources = {"num_cpus": self.cpus_per_member, **({"num_gpus": 1} if has_gpu else {})}
        self.relay = ray.remote(num_cpus=0)(EventRelay).remote()
        task = ray.remote(run_member).options(max_retries=self.retries, retry_exceptions=False, **resources)
        self.by_ref = {}
        for run_id, member in self.members.items():
            crash_round = self.crash[1] if self.crash and self.crash[0] == run_id else None
            ref = task.remote(member, self.sweep.get("preset"), str(self.worker_home), self.relay, has_gpu, crash_round)
            self.by_ref[ref] = run_id
        pending = list(self.by_ref)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=self.poll_seconds)
                self._deliver()
                self._finish(done)
        except KeyboardInterrupt:
            self._cancel(pending)
            return self.outcomes, True
        finally:
            for recorder in self.recorders.values():
                recorder.close()
        return self.outcomes, False

    def _deliver(self) -> None:
        """Record every drained event, then report them (a Ctrl-C while reporting loses no record)."""
        recorded = []
        for run_id, batch in self.ray.get(self.relay.drain.remote()):
            for data in batch:
                event = event_from_dict(data)
                if isinstance(event, RunStarted):
                    self.started.add(run_id)
                elif run_id not in self.started:
                    continue  # its RunStarted was lost to an earlier Ctrl-C: no record to add it to
                self.recorders[run_id](event)
                recorded.append((run_id, event))
        for run_id, event in recorded:
            self.report(self.members[run_id], event)

    def _finish(self, done: list) -> None:
        for ref in done:
            run_id = self.by_ref[ref]
            try:
                outcome = self.ray.get(ref)
            except self.ray.exceptions.RayError as error:  # retries used up, cancelled, or a bug in the task
                outcome = {"status": "failed", "error": _error_line(error)}
            self.outcomes[run_id] = outcome
            record = next((r for r in self.store.list_runs() if r["id"] == run_id), None)
            if record is not None and record.get("status") == "running":  # its RunEnded never arrived
                self.store.update_run(run_id, status=outcome["status"], ended=time.time(), error=outcome["error"])

    def _cancel(self, pending: list) -> None:
        ray = self.ray
        before = dict(self.outcomes)
        # no ray.cancel yet: interrupting a task while it imports torch can break that worker process;
        # running members stop after their batch, waiting ones return at once without starting
        ray.get(self.relay.request_stop.remote())
        deadline = time.monotonic() + self.grace_seconds
        try:
            while pending and time.monotonic() < deadline:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=self.poll_seconds)
                self._deliver()
                self._finish(done)
        except KeyboardInterrupt:  # a second Ctrl-C: do not wait for batches to end
            pass
        for ref in pending:
            ray.cancel(ref, force=True)
        self._mark_stopped(keep=before)

    def _mark_stopped(self, keep: dict[str, dict[str, str]]) -> None:
        """Every member that did not finish (and had not failed before the Ctrl-C) is recorded as stopped."""
        records = {r["id"]: r for r in self.store.list_runs() if r["id"] in self.members}
        for run_id in self.members:
            if run_id in keep:
                continue
            self.outcomes[run_id] = {"status": "stopped", "error": ""}
            record = records.get(run_id)
            if record is not None and record.get("status") != "finished":
                self.store.update_run(run_id, status="stopped", error="", ended=record.get("ended") or time.time())
            elif record is not None:
                self.outcomes[run_id] = {"status": "finished", "error": ""}


def _error_line(error: Exception) -> str:
    """One line for a Ray error: the task's own exception when there is one."""
    cause = getattr(error, "cause", None) or error
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"


def run_ray(store: Store, sweep: dict[str, Any], members: list[dict[str, Any]], address: str | None = None,
            **options: Any) -> tuple[dict[str, dict[str, str]], bool]:
    """Run `members` of `sweep` on Ray (a local instance unless `address`); see RayDriver for options."""
    ray = import_ray()
    started_here = connect(ray, address)
    try:
        return RayDriver(ray, store, sweep, members, **options).run()
    finally:
        if started_here:
            ray.shutdown()
