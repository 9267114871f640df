"""The Ray engine: each member is a Ray task; its events stream back to the driver, which alone writes the store.

Ray is an optional extra and is imported only here, inside functions. A member task sends its events
in batches to an `EventRelay` actor (at once for RunStarted/RoundEnded/RunEnded, else every half
second); the driver drains the relay and feeds each member's events to a `MemberRecorder`.

A member whose worker or node dies is retried by Ray (`max_retries`) and resumes from its last
checkpoint, which it looks for under `worker_home/runs/<id>/`. That works when `worker_home` is the
same readable path on every node: a single machine, or a shared filesystem (NFS, a cluster's home
directories). Without one, a retried member starts over, which is slower but gives the same curve.

Ctrl-C: members that have not started are cancelled (`ray.cancel(force=True)`); through the relay
every running member is asked to stop after its batch (its checkpoint stays); whatever has not
returned within the grace period (or at a second Ctrl-C) is force-cancelled too. Every member that
did not finish is recorded as stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.openmp import wait_settings
from ..errors import SddError
from ..events import Event, RoundEnded, RoundStarted, RunEnded, RunStarted, event_from_dict
from ..history.records import SweepRecord
from ..history.store import Store

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
    """The member task's sink: buffers events and sends them to the relay; a stop reply stops the run.

    Sends never wait for the relay: a Ray task blocked in `ray.get` lends its CPU to the next queued
    task, which would run more members at once than there are CPUs. The reply to one send is read
    (if it has arrived) at the next; only `close` waits, so that the last events are delivered."""

    def __init__(self, relay, run_id: str, control, flush_seconds: float = 0.5):
        self.relay, self.run_id, self.control = relay, run_id, control
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._sent = None  # ObjectRef of the last send
        self._reply = None  # its concurrent.futures.Future
        self._closed = threading.Event()
        self._ticker = threading.Thread(target=self._tick, args=(flush_seconds,), daemon=True)
        self._ticker.start()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._buffer.append(event.to_dict())
        if isinstance(event, FLUSH_AT_ONCE):
            self.flush()

    def flush(self) -> None:
        """Send what is buffered (also nothing: the reply says whether to stop)."""
        with self._lock:
            if self._reply is not None and self._reply.done() and self._reply.result():
                self.control.stop.set()
            batch, self._buffer = self._buffer, []
            self._sent = self.relay.put.remote(self.run_id, batch)
            self._reply = self._sent.future()

    def connect(self, timeout: float = 60.0) -> bool:
        """Send nothing and wait for the reply by sleeping (not `ray.get`): until the first reply, Ray
        holds a busy task's sends back for seconds. Returns whether the sweep is stopping."""
        self.flush()
        deadline = time.monotonic() + timeout
        while not self._reply.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._reply.done() and bool(self._reply.result())

    def _tick(self, seconds: float) -> None:
        while not self._closed.wait(seconds):
            self.flush()

    def close(self) -> None:
        """Send the rest and wait until the relay has it (the actor runs one caller's sends in order)."""
        import ray

        self._closed.set()
        self.flush()
        ray.get(self._sent)


def _fault_hook(sink: RelaySink, control, faults: dict[str, int]) -> Callable[[Event], None]:
    """Test hooks, a sink after the relay, when a round starts: `crash_round` ends this worker process
    abruptly, as a dying node would (the checkpoint of the round before is on disk by then); `hold_round`
    pauses the member until the sweep is stopped (a member still training when Ctrl-C comes)."""

    def faulty(event: Event) -> None:
        if isinstance(event, RoundStarted) and event.round == faults.get("crash_round"):
            sink.close()
            os._exit(1)
        if isinstance(event, RoundStarted) and event.round == faults.get("hold_round"):
            control.paused.set()

    return faulty


def run_member(member: dict[str, Any], preset: str | None, worker_home: str, relay, has_gpu: bool,
               faults: dict[str, int] | None = None) -> dict[str, str]:
    """The Ray task: run (or resume, when a checkpoint exists) one member; returns its status and error."""
    from ..engine.training import Control
    from ..paths import checkpoint_exists
    from ..runs.launch import build_run
    from .sweep import member_config

    config = member_config(member)
    config.runtime.device = ray_member_device(config.runtime.device, has_gpu)
    home, run_id = Path(worker_home), member["run_id"]
    resume = checkpoint_exists(home, run_id)
    control = Control()
    relay_sink = RelaySink(relay, run_id, control)
    if relay_sink.connect():  # the sweep was stopped while this member waited for a CPU or GPU
        relay_sink.close()
        return {"status": "not started", "error": ""}
    hooks = [_fault_hook(relay_sink, control, faults)] if faults and not resume else []
    run = build_run(config, home, preset=preset, run_id=run_id, resume=resume, control=control, recorder=relay_sink,
                    sinks=hooks)  # the relay records: the driver alone writes the store
    try:
        return {"status": run.run(), "error": ""}
    except SddError as error:
        return {"status": "failed", "error": str(error)}


# ---------------------------------------------------------------------------- the driver


def connect(ray, address: str | None) -> bool:
    """Join the cluster at `address` (auto | ray://host:port), or start a local instance; True if started here."""
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"at {address}" if address else "locally"
        raise SddError(f"cannot start or reach a Ray cluster {where} ({str(error).splitlines()[0]}); "
                       "start one with `ray start --head`, or leave out --address for a local instance") from None
    return address is None


class RayDriver:
    """Launches the members as tasks and records their events; `run()` returns (outcomes, interrupted)."""

    def __init__(self, ray, store: Store, sweep: SweepRecord, members: list[dict[str, Any]], *,
                 worker_home: Path, cpus_per_member: float = 1.0, retries: int = 3,
                 report: Callable[[dict[str, Any], Event], None] | None = None, poll_seconds: float = 0.2,
                 grace_seconds: float = 60.0, faults: dict[str, dict[str, int]] | None = None):
        from .sweep import MemberRecorder

        self.ray, self.store, self.sweep = ray, store, sweep
        self.members = {m["run_id"]: m for m in members}
        self.worker_home, self.cpus_per_member, self.retries = worker_home, cpus_per_member, retries
        self.report = report or (lambda member, event: None)
        self.poll_seconds, self.grace_seconds = poll_seconds, grace_seconds
        self.faults = faults or {}  # test hooks by run id, see _with_faults
        self.recorders = {run_id: MemberRecorder(store, sweep.id) for run_id in self.members}
        self.started: set[str] = set()
        self.outcomes: dict[str, dict[str, str]] = {}

    def run(self) -> tuple[dict[str, dict[str, str]], bool]:
        ray = self.ray
        cluster_has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        self.relay = ray.remote(num_cpus=0)(EventRelay).remote()
        task = ray.remote(run_member)
        self.by_ref = {}
        for run_id, member in self.members.items():
            uses_gpu = cluster_has_gpu and member["config"]["runtime"]["device"] not in ("cpu", "mps")
            options = {"num_cpus": self.cpus_per_member, "num_gpus": 1 if uses_gpu else 0,
                       "max_retries": self.retries, "retry_exceptions": False}
            if waiting := wait_settings(os.environ):  # a worker imports torch before any code of ours runs
                options["runtime_env"] = {"env_vars": waiting}
            ref = task.options(**options).remote(member, self.sweep.preset, str(self.worker_home), self.relay,
                                                 uses_gpu, self.faults.get(run_id))
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
            record = next((r for r in self.store.summaries() if r["id"] == run_id), None)
            if record is not None and record.get("status") == "running":  # its RunEnded never arrived
                self.store.update_run(run_id, status=outcome["status"], ended=time.time(), error=outcome["error"])

    def _cancel(self, pending: list) -> None:
        ray = self.ray
        before = dict(self.outcomes)
        ray.get(self.relay.request_stop.remote())  # running members stop after their batch
        self._deliver()
        for ref in pending:
            if self.by_ref[ref] not in self.started:
                # waiting, or starting with nothing to keep yet; force: a KeyboardInterrupt raised into a
                # worker that is importing torch can leave that (reused) process unable to import it
                ray.cancel(ref, force=True)
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
        records = {r["id"]: r for r in self.store.summaries() if r["id"] in self.members}
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


@contextlib.contextmanager
def ray_session(address: str | None = None):
    """Ray, connected to `address` (or a local instance started here, on 127.0.0.1 only, shut down on exit)."""
    ray = import_ray()
    with loopback_only(enabled=address is None and not ray.is_initialized()):
        started_here = connect(ray, address)
        try:
            yield ray
        finally:
            if started_here:
                ray.shutdown()


LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def loopback_only(enabled: bool = True):
    """A local instance whose servers (GCS, raylet, workers, agents) listen on 127.0.0.1, not on every
    interface: Ray does that when it runs without 'clusters', as on macOS. The variable reaches the
    processes Ray starts; the constant, this driver, whether or not Ray was imported before. A test
    (tests/test_sweep_ray_local.py) checks the listening sockets, so a Ray that changes this fails loudly."""
    if not enabled:
        yield
        return
    from ray._private import ray_constants

    before_env, before_constant = os.environ.get(LOOPBACK_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOOPBACK_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_constant
        if before_env is None:
            os.environ.pop(LOOPBACK_ENV, None)
        else:
            os.environ[LOOPBACK_ENV] = before_env


def run_ray(store: Store, sweep: SweepRecord, members: list[dict[str, Any]], address: str | None = None,
            **options: Any) -> tuple[dict[str, dict[str, str]], bool]:
    """Run `members` of `sweep` on Ray (a local instance unless `address`); see RayDriver for options."""
    with ray_session(address) as ray:
        return RayDriver(ray, store, sweep, members, **options).run()
