"""The settings of one `sdd-tui analyze --redense`: built and checked once where they are given (the CLI),
then passed down as one object through flatness.analyze_run and analyze_round."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SddError

BN_MODES = ("interpolate", "recompute")
BRANCHES = ("main", "reinit", "random_prune")
DEFAULT_EPOCHS = 10


@dataclass(frozen=True)
class RedenseOptions:
    """Which stored rounds to re-dense, how, and how to walk back to the sparse end.

    `epochs` None: DEFAULT_EPOCHS short re-dense epochs (the official procedure trains the run's own lengths,
    so it takes no epochs); `lr` None: the last LR of the sparse round; `filter_points` 0: no 1-D loss plots;
    `device` None: the run's device; `bn_samples` None: every training sample."""

    rounds: tuple[int, ...]
    epochs: int | None = None
    steps: int = 101
    branch: str = "main"
    filter_points: int = 0
    device: str | None = None
    lr: float | None = None
    bn: str = "interpolate"
    bn_samples: int | None = None
    official: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounds", tuple(self.rounds))
        for problem in self._problems():
            raise SddError(problem)

    @property
    def short_epochs(self) -> int:
        """Epochs of the short (non-official) re-dense."""
        return DEFAULT_EPOCHS if self.epochs is None else self.epochs

    @property
    def result_key(self) -> str:
        """Where a run keeps these results under `analyses`."""
        return "redense" if self.branch == "main" else f"redense_{self.branch}"

    def _problems(self):
        from ..config import is_device_name

        if self.device is not None and not is_device_name(self.device):
            yield f"--device {self.device!r}: use auto, cpu, cuda or cuda:N"
        if not self.rounds:
            yield "--redense needs --rounds, e.g. --rounds 5,10,20"
        if self.official and self.epochs is not None:
            yield ("--official trains the official lengths (T - t iterations sparse, then T epochs dense); "
                   "leave out --epochs")
        if self.short_epochs < 1 or self.steps < 2:
            yield f"--epochs must be >= 1 and --interp-steps >= 2 (got {self.short_epochs}, {self.steps})"
        if self.lr is not None and not 0 < self.lr <= 10:
            yield f"--lr {self.lr}: give a learning rate in (0, 10]"
        if self.bn not in BN_MODES:
            yield (f"--bn {self.bn!r}: use interpolate (batch-norm statistics interpolated like the weights) or "
                   f"recompute (recomputed on training batches at every point)")
        if self.bn_samples is not None and self.bn_samples < 1:
            yield f"--bn-samples {self.bn_samples}: give a number of training samples >= 1"
        if self.branch not in BRANCHES:
            yield f"--branch {self.branch!r}: use main, reinit or random_prune"
        if self.official and (self.branch != "main" or self.lr is not None):
            yield ("--official re-dense trains the round's own ticket at the schedule's LRs; "
                   "leave out --branch and --lr")
