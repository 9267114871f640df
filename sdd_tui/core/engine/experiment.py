"""The prune-retrain loop: train dense, prune, reset weights per the retrain mode, retrain, repeat.

It reports only through events. Its Checkpointer writes a checkpoint after every round (and at epoch
ends when its clock says so); a resumed run goes on from the last one.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .. import provenance, seeds
from ..config import ExperimentConfig
from ..data.datasets import Dataset, load_dataset, noise_report
from ..errors import SddError, StopRequested, allocation_failure, too_big
from ..events import Message, PauseChanged, RoundEnded, RoundStarted, RunEnded, RunStarted, Sink
from ..format import pct
from ..paths import RunPaths, new_run_id
from ..plugins import plugin_provenance
from ..retrain import RETRAIN_MODES, round_start
from . import pruning
from .checkpoint import Checkpointer
from .dense_source import ReusedDense, reuse_dense
from .device import library_versions, resolve_device
from .models import prunable_names
from .round_branches import RoundBranchTrainer
from .round_result import with_reinit
from .run_control import REFUSED, RequestReader
from .run_models import RunModels
from .run_state import PartialRound, RoundInProgress, State, restore_rng
from .runtime_context import run_context
from .training import Branch, Control, snapshot


class Experiment:
    """One sparse double descent run. `run()` blocks; drive it from a thread to keep a UI live."""

    def __init__(self, config: ExperimentConfig, sink: Sink, home: Path, preset: str | None = None,
                 run_id: str | None = None, control: Control | None = None, resume: bool = False,
                 branch_trainer: type[RoundBranchTrainer] | Callable[..., RoundBranchTrainer] = RoundBranchTrainer):
        self.config = config
        self.sink = sink
        self.home = Path(home)
        self.preset = preset
        self.run_id = run_id or new_run_id()
        self.control = control or Control()
        # pause/stop requests from other processes (`sdd-tui pause ID`, a dashboard elsewhere): core.engine.run_control
        self.control.listen(RequestReader(RunPaths(self.home, self.run_id).control),
                            on_pause=lambda paused: self._emit(PauseChanged, paused=paused),
                            on_refused=lambda reason: self.info(REFUSED + reason, "warning"))
        self.resume = resume
        self.branch_trainer = branch_trainer  # builds self.branches (a cohort member's hands its training over)
        self.checkpoints = Checkpointer(RunPaths(self.home, self.run_id), config)
        self.round: RoundInProgress | None = None  # the round being trained
        self.data: Dataset | None = None  # run() loads it, then builds:
        self.models: RunModels | None = None
        self.branches: RoundBranchTrainer | None = None

    def _emit(self, cls, **fields) -> None:
        self.sink(cls(run_id=self.run_id, time=time.time(), **fields))

    def info(self, text: str, level: str = "info") -> None:
        self._emit(Message, level=level, text=text)

    # ------------------------------------------------------------------ top level

    def run(self) -> str:
        """Run to the end; returns the final status. User errors are re-raised after RunEnded(failed)."""
        with run_context(threads=self.config.runtime.threads, seed=self.config.runtime.seed):
            return self._run()

    def _run(self) -> str:
        started = time.perf_counter()
        cfg = self.config
        device = resolve_device(cfg.runtime.device)
        state = self.checkpoints.load(device) if self.resume else None
        try:  # a bad data dir or a dataset too big for memory: one line, no record
            self.data = load_dataset(cfg.data, cfg.noise, self.home, cfg.runtime.seed, cfg.runtime.seed_scheme,
                                     stop=self.control.stop).to(device)
            if state is not None:
                self.checkpoints.restore_labels(self.data, state)
            self.models = RunModels(cfg, self.data, device, self.info)
        except RuntimeError as error:
            if (asked := allocation_failure(error)) is None:
                raise
            raise too_big(asked, "loading the data or building the model") from None
        except StopRequested:  # stopped while reading the data: nothing was trained or recorded
            return "stopped"
        self.branches = self.branch_trainer(cfg, self.data, self.control, self.models, self.checkpoints, self.sink,
                                            self.info)
        self._emit(RunStarted, name=cfg.name, preset=self.preset, config=cfg.model_dump(mode="json"),
                   device=str(device), rounds=cfg.prune.rounds, epochs=cfg.train.epochs,
                   host=socket.gethostname(), versions=library_versions(),
                   provenance=provenance.collect(plugins=plugin_provenance(cfg)),
                   resumed_from_round=max(state.round, 0) if self.resume and state else -1)
        if self.resume and state is None:
            self.info(f"run {self.run_id} has no checkpoint yet; starting it over", "warning")
        try:
            self._loop(state)
        except BaseException as error:
            self.checkpoints.write_pending_quietly(lambda text: self.info(text, "warning"))
            return self._stopped_or_failed(error, started)
        self._end("finished", started)
        return "finished"

    def _stopped_or_failed(self, error: BaseException, started: float) -> str:
        """'stopped' for a stop request; otherwise RunEnded(failed), then the error goes on up."""
        where = self.round.index if self.round else 0
        if isinstance(error, StopRequested):
            epoch = self.branches.current_epoch if self.branches else 0
            self._end("stopped", started, f"stopped in round {where} after epoch {epoch}; "
                                          f"{self.checkpoints.resume_hint()}")
            return "stopped"
        if isinstance(error, torch.cuda.OutOfMemoryError):
            batch = self.config.train.batch_size
            message = (f"GPU out of memory in round {where} (train.batch_size={batch}); "
                       f"finished rounds are kept; start again with --set train.batch_size={max(1, batch // 2)}, "
                       f"or free GPU memory and `sdd-tui resume {self.run_id}`")
            self._end("failed", started, message)
            raise SddError(message) from None
        if (asked := allocation_failure(error)) is not None:
            too_large = too_big(asked, f"in round {where}")
            self._end("failed", started, str(too_large))
            raise too_large from None
        self._end("failed", started, str(error) if isinstance(error, SddError) else f"{type(error).__name__}: {error}")
        raise error

    def _end(self, status: str, started: float, error: str = "") -> None:
        """Say how the run ended. The error's own line may be refused (a full disk, a closed terminal): the
        run's end is still recorded. A recorder that cannot record the end (a store locked by another
        process) raises its one-line SddError; a closed terminal leaves the record `running`, shown as
        `interrupted`."""
        if error:
            with contextlib.suppress(OSError, SddError):
                self.info(error, "error" if status == "failed" else "warning")
        with contextlib.suppress(OSError):
            self._emit(RunEnded, status=status, error=error if status == "failed" else "",
                       seconds=time.perf_counter() - started)

    # ------------------------------------------------------------------ the round schedule

    def _loop(self, state: State | None) -> None:
        cfg, data = self.config, self.data
        reused = None
        if cfg.prune.dense_from and (state is None or state.round < 0):
            reused = reuse_dense(self.home, cfg, data.x_train.device)
            self.checkpoints.restore_labels(data, reused)  # the noisy labels its dense round saw
        if cfg.noise.kind != "none":
            self.info(noise_report(cfg.noise, data))
        self.checkpoints.labels = {"y_train": data.y_train.cpu(), "noisy_mask": data.noisy_mask.cpu()}
        model = self.models.new(self.models.init_seed())
        self.models.compile(model)
        if state is not None and state.partial is None:
            restore_rng(state.rng)  # an unfinished round restores its own, just before training goes on
        if reused is not None:
            state = self._reused_dense(model, reused)
        elif state is None or state.round < 0:
            state = self._dense_round(model, state)
            self.checkpoints.round_ended(state)
        for round_index in [r for r in cfg.prune.trained_rounds() if r > state.round]:
            state = self._prune_round(round_index, model, state)
            self.checkpoints.round_ended(state)

    def _dense_round(self, model: nn.Module, state: State | None) -> State:
        """Round 0: the dense network, keeping its weights at the rewind iteration."""
        cfg = self.config
        partial = state.partial if state else None
        if partial is None:
            masks, init = pruning.full_masks(model, prunable_names(model, cfg.prune.layers)), snapshot(model)
        else:
            masks, init = partial.masks, state.init
        self.checkpoints.finished = State(-1, None, None, init, None, [])
        total = self.branches.iterations_per_epoch * cfg.train.epochs
        if cfg.retrain.rewind_iteration > total and partial is None:
            self.info(f"retrain.rewind_iteration={cfg.retrain.rewind_iteration} is past the end of training "
                      f"({total} iterations); rewinding to the end", "warning")
        self._start_round(0, masks, partial.next_epoch if partial else 0)
        training = self.branches.train(self.round, model, Branch.MAIN, 0, partial,
                                       capture_iteration=min(cfg.retrain.rewind_iteration, total))
        result = self.branches.result(self.round, model, init, training.epochs)
        self._emit(RoundEnded, round=0, rounds=cfg.prune.rounds, result=result)
        trained = snapshot(model)
        return State(0, trained, masks, init, training.captured, [result], dense=self._oneshot_source(trained))

    def _reused_dense(self, model: nn.Module, reused: ReusedDense) -> State:
        """Round 0 taken over from run `prune.dense_from` (its trained weights, init and rewind point)."""
        model.load_state_dict(reused.model)
        result = reused.result
        self.info(f"dense round reused from run {reused.run_id} (prune.dense_from): "
                  f"test {pct(result.get('test_acc'))}, "
                  f"train {pct(result.get('train_acc'))}")
        return State(0, reused.model, reused.masks, reused.init, reused.rewind, [],
                     dense=self._oneshot_source(reused.model))

    def _oneshot_source(self, dense: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """One-shot rounds all prune the trained dense network: the state keeps it (iterative: None)."""
        return dense if self.config.prune.schedule == "oneshot" else None

    def _prune_round(self, index: int, model: nn.Module, state: State) -> State:
        """Prune (the last round's network, or one-shot the dense one), start where the retrain mode says,
        retrain; then the reinit branch when there is one."""
        cfg = self.config
        partial, rule = state.partial, RETRAIN_MODES[cfg.retrain.mode]
        self.checkpoints.finished = state
        model.load_state_dict(state.dense if state.dense is not None else state.model)
        masks = partial.masks if partial else self._prune(model, state.masks, index)
        per_epoch = self.branches.iterations_per_epoch
        start = round_start(cfg.retrain, per_epoch * cfg.train.epochs, state.rewind,
                            lambda: self.models.new(self.models.fresh_seed(index)).state_dict())
        if start.weights is not None:
            model.load_state_dict(start.weights)
        init = snapshot(model) if rule.distance_from_round_start else state.init
        if partial is not None and partial.branch is Branch.REINIT:  # the main branch had finished
            model.load_state_dict(partial.main_model)
            result = partial.main_result
            self._start_round(index, masks, cfg.train.epochs)
        else:
            self._start_round(index, masks, partial.next_epoch if partial else start.iteration // per_epoch)
            training = self.branches.train(self.round, model, Branch.MAIN, start.iteration, partial,
                                           fixed_lr=start.fixed_lr)
            result = self.branches.result(self.round, model, init, training.epochs)
        reinit_model = None
        if rule.reports_reinit or cfg.retrain.compare_reinit:
            self.round.main_result, self.round.main_model = result, snapshot(model)
            reinit, reinit_model = self._reinit_branch(index, partial)
            result = with_reinit(result, reinit, rule.reports_reinit)
        self._emit(RoundEnded, round=index, rounds=cfg.prune.rounds, result=result)
        return State(index, snapshot(model), masks, state.init, state.rewind, [*state.rounds, result], reinit_model,
                     dense=state.dense)

    def _reinit_branch(self, index: int, partial: PartialRound | None):
        """Same mask, fresh random init, trained from iteration 0: 'winning tickets may not always win'."""
        self.round.started = time.perf_counter()
        model = self.models.fresh_reinit(index)
        init = snapshot(model)
        training = self.branches.train(self.round, model, Branch.REINIT, 0, partial)
        return self.branches.result(self.round, model, init, training.epochs), snapshot(model)

    def _start_round(self, index: int, masks: pruning.Masks, start_epoch: int) -> None:
        self.round = RoundInProgress(index, masks)
        self._emit(RoundStarted, round=index, rounds=self.config.prune.rounds, sparsity=pruning.sparsity(masks),
                   remaining=pruning.remaining(masks), epochs=self.config.train.epochs, start_epoch=start_epoch)

    def _prune(self, model: nn.Module, masks: pruning.Masks, index: int) -> pruning.Masks:
        cfg, data = self.config, self.data
        generator = seeds.pruning_generator(cfg.runtime.seed, index, cfg.prune.method, cfg.runtime.seed_scheme)
        batch = lambda g: pruning.random_batch(data.x_train, data.y_train, cfg.train.batch_size, g)  # noqa: E731
        if cfg.prune.schedule == "oneshot":
            return pruning.oneshot_step(model, masks, cfg.prune, generator, batch, index)
        return pruning.prune_step(model, masks, cfg.prune, generator, batch)
