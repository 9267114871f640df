"""Several runs in one process as a packed cohort: each an ordinary run in its own thread, trained together.

Every member is an Experiment built by `build_run`: its own data and noise, init, masks, events, store
record, checkpoints and round files. Only what trains its branches differs: a `MemberBranchTrainer`
hands each branch to the cohort and waits. The cohort, driven from the calling thread (which also gets
the signals), waits until every live member has asked or ended, takes the members at the earliest point
(round, start iteration) that can pack, trains them as one packed model (core.engine.cohort_training), or one
alone on the ordinary Trainer, and hands each its result or its error. Members that resume from
checkpoints at different points catch up: the ones behind train first, then they pack again.
Between trainings the members' own threads do the rest (evaluation, pruning, checkpoints) side by side.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch

from ..engine.cohort_model import packable_module
from ..engine.cohort_plan import pack_key
from ..engine.cohort_training import CohortTrainer, MemberTraining
from ..engine.round_branches import RoundBranchTrainer
from ..engine.run_control import cohort_refusal
from ..engine.runtime_context import run_context
from ..engine.training import Branch, RoundTraining, Trainer, TrainSchedule
from ..errors import StopRequested
from .launch import RunHandle


class MemberBranchTrainer(RoundBranchTrainer):
    """A cohort member's RoundBranchTrainer: the cohort trains the branch, everything around it is the run's own."""

    def __init__(self, cohort: Cohort, *args):
        super().__init__(*args)
        self.cohort = cohort

    def _run(self, trainer: Trainer, schedule: TrainSchedule) -> RoundTraining:
        return self.cohort.train(MemberTraining(self.checkpoints.run_id, trainer, schedule, self.checkpoints,
                                                self.config))


@dataclass
class _Request:
    member: MemberTraining
    order: int  # the member's place in the cohort: ties go to the first
    done: bool = False
    result: RoundTraining | BaseException | None = None

    @property
    def position(self) -> tuple[int, int, int, int]:
        trainer = self.member.trainer
        return trainer.round_index, trainer.branch.stream, self.member.schedule.start_iteration, self.order

    @cached_property
    def key(self) -> tuple | None:
        """Equal for requests that train as one packed model; None for one that trains alone."""
        trainer, config = self.member.trainer, self.member.config
        if (config is None or trainer.branch is not Branch.MAIN or not packable_module(trainer.model)
                or trainer.runtime.grad_scaling):  # fp16 loss scaling skips steps for all at once
            return None
        key = pack_key(config)
        return None if key is None else (key, *self.position[:3])


class Cohort:
    """Runs members (RunHandles built with `branch_trainer=cohort.branch_trainer`) to their ends; `say`
    gets a line whenever a group trains; packed groups use `threads` CPU threads (default: torch's now)."""

    def __init__(self, say: Callable[[str], None] = lambda text: None, threads: int | None = None):
        self.say = say
        self.threads = threads or torch.get_num_threads()
        self.changed = threading.Condition()
        self.requests: dict[str, _Request] = {}
        self.order: dict[str, int] = {}
        self.live: set[str] = set()
        self.closed = False
        self.statuses: dict[str, str] = {}
        self.errors: dict[str, BaseException] = {}  # what ended a failed member's run

    def branch_trainer(self, *args) -> MemberBranchTrainer:
        """For build_run(branch_trainer=...): the member's branches train in this cohort."""
        return MemberBranchTrainer(self, *args)

    # ------------------------------------------------------------------ the members' threads

    def train(self, member: MemberTraining) -> RoundTraining:
        """Called by a member's thread: wait for the cohort to train this branch; its result, or its error."""
        request = _Request(member, self.order.get(member.run_id, len(self.order)))
        with self.changed:
            if self.closed:
                raise StopRequested()
            self.requests[member.run_id] = request
            self.changed.notify_all()
            self.changed.wait_for(lambda: request.done)
        if isinstance(request.result, BaseException):
            raise request.result
        return request.result

    def _member(self, handle: RunHandle) -> None:
        try:
            self.statuses[handle.run_id] = handle.run()
        except BaseException as error:  # the run recorded RunEnded(failed) with it (when it had started)
            self.statuses[handle.run_id] = "failed"
            self.errors[handle.run_id] = error
        finally:
            with self.changed:
                self.live.discard(handle.run_id)
                self.changed.notify_all()

    # ------------------------------------------------------------------ the driving thread

    def run(self, handles: list[RunHandle]) -> dict[str, str]:
        """Run every member to its end; returns each one's final status (finished, stopped or failed)."""
        self.order = {handle.run_id: index for index, handle in enumerate(handles)}
        for handle in handles:  # one member cannot hold while the others step: a pause is refused, a stop is its own
            handle.control.pause_refusal = cohort_refusal(handle.run_id)
        self.live = set(self.order)
        threads = [threading.Thread(target=self._member, args=(handle,), name=f"member {handle.run_id}")
                   for handle in handles]
        for thread in threads:
            thread.start()
        try:
            while (group := self._next_group()) is not None:
                self._train(group)
        finally:
            self._close(handles)
            for thread in threads:
                thread.join()
        return dict(self.statuses)

    def _next_group(self) -> list[_Request] | None:
        """Once every live member waits: the earliest request and those that pack with it; None when all ended."""
        with self.changed:
            while self.live and not all(run_id in self.requests for run_id in self.live):
                self.changed.wait(timeout=0.5)  # a timeout keeps the signal handlers of this thread running
            if not self.live:
                return None
            first = min(self.requests.values(), key=lambda r: r.position)
            group = [r for r in self.requests.values() if first.key is not None and r.key == first.key] or [first]
            for request in sorted(group, key=lambda r: r.order):
                del self.requests[request.member.run_id]
            return sorted(group, key=lambda r: r.order)

    def _train(self, group: list[_Request]) -> None:
        lead = group[0].member
        where = f"round {lead.trainer.round_index} from iteration {lead.schedule.start_iteration}"
        try:
            if len(group) > 1:
                self.say(f"{where}: {len(group)} members packed ({self.threads} CPU thread(s)): "
                         + ", ".join(r.member.run_id for r in group))
                # a member that drops out (a stop, NaN) gets its error at once: its run ends now, not at the
                # end of the others' round (`sdd-tui stop ID` on one member answers at its next batch)
                drop = lambda index, error: self._deliver([group[index]], [error])  # noqa: E731
                with run_context(threads=self.threads):
                    results = CohortTrainer([r.member for r in group], on_drop=drop).train()
            else:
                threads = lead.config.runtime.threads if lead.config else None
                self.say(f"{where}: {lead.run_id} alone")
                with run_context(threads=threads or self.threads):
                    results = [lead.trainer.train(**vars(lead.schedule))]
        except KeyboardInterrupt:  # a second Ctrl-C: the members stop where they are, then this ends
            self._deliver(group, [StopRequested()] * len(group))
            raise
        except BaseException as error:  # the packed step itself failed: every member in it fails with it
            results = [error] * len(group)
        self._deliver(group, results)

    def _deliver(self, group: list[_Request], results: list) -> None:
        with self.changed:
            for request, result in zip(group, results):  # each thread raises an error of its own
                if request.done:  # delivered when it dropped out
                    continue
                request.result = copy.copy(result) if isinstance(result, BaseException) else result
                request.done = True
            self.changed.notify_all()

    def _close(self, handles: list[RunHandle]) -> None:
        """No more training: waiting members stop (keeping their checkpoints), later requests too."""
        with self.changed:
            self.closed = True
            if self.live:
                for handle in handles:
                    handle.control.stop.set()
            for request in self.requests.values():
                request.result, request.done = StopRequested(), True
            self.requests.clear()
            self.changed.notify_all()
