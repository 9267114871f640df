"""How a sweep's members run: the engine and its settings, resolved once from the command line, the sweep's
record (a resumed sweep keeps its settings) and the defaults, then read as attributes by the engines."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import SddError
from ..history.records import SweepRecord
from .sweep import ENGINES


@dataclass(frozen=True)
class EngineOptions:
    engine: str = "local"
    address: str | None = None  # Ray: the cluster (None: a local instance)
    max_parallel: int | None = None  # local: members at once (None: one per GPU, or 1)
    cpus_per_member: float = 1.0  # Ray
    worker_home: str = ""  # Ray: where workers keep checkpoints and data
    pack: bool = False  # local: train packed cohorts
    pack_size: int = 32
    retries: int = 3  # Ray: times a member whose worker dies is retried; not stored with the sweep

    def record_fields(self) -> dict[str, Any]:
        """The settings a sweep's record keeps (all but `retries`, as before the options were typed)."""
        fields = asdict(self)
        del fields["retries"]
        return fields


def engine_options(sweep: SweepRecord | None, engine: str | None, address: str | None, max_parallel: int | None,
                   cpus_per_member: float | None, worker_home: Path | None, store, pack: bool | None = None,
                   pack_size: int | None = None, retries: int = 3) -> EngineOptions:
    """The engine settings: what was given, else what the sweep used before (`sweep`, resumed), else the
    defaults."""
    previous = sweep if sweep is not None else SweepRecord(id="")  # a new sweep: nothing used before
    engine = engine or previous.engine or "local"
    if engine not in ENGINES:
        raise SddError(f"--engine {engine!r}: use local or ray")
    if engine == "local" and address is not None:
        raise SddError("--address is for --engine ray; add --engine ray or drop --address")
    from ..engine.cohort_plan import DEFAULT_PACK_SIZE

    pack = pack if pack is not None else bool(previous.pack)
    if pack and engine == "ray":
        raise SddError("--pack packs members into cohorts with the local engine; drop --pack or use --engine local")
    return EngineOptions(
        engine=engine, pack=pack, pack_size=pack_size or previous.pack_size or DEFAULT_PACK_SIZE,
        address=address if address is not None else previous.address,
        max_parallel=max_parallel or previous.max_parallel,
        cpus_per_member=cpus_per_member or previous.cpus_per_member or 1.0,
        worker_home=str(worker_home) if worker_home else previous.worker_home or str(store.home),
        retries=retries)
