"""A run's and a sweep's record, typed: parsed once where the store reads them (Store.run, Store.sweep), read
as attributes after.

The on-disk JSON is unchanged: `RunRecord.to_dict()` gives back exactly the dict it was parsed from (same
keys in the same order, unknown keys kept, no default added), so a command that writes a record it read
never writes less than the record held (the store's rule). Strict types: JSON gives ints, floats, strings
and lists as they are, and a field of the wrong type is a one-line SddError naming the run and the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from pydantic import BaseModel, ConfigDict, PrivateAttr, StrictFloat, StrictInt, ValidationError

from ..errors import SddError

if TYPE_CHECKING:
    from ..config import ExperimentConfig

Number = Union[StrictInt, StrictFloat]


class RunRecord(BaseModel):
    """run.json plus rounds.json (see core/history/run_folder.py), or a store summary whose folder is gone."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: str
    name: str | None = None
    preset: str | None = None
    status: str = "?"
    host: str | None = None
    pid: StrictInt | None = None
    device: str | None = None
    started: Number | None = None
    ended: Number | None = None
    error: str | None = ""
    sweep: str | None = None
    tags: list[str] = []
    note: str | None = ""
    config: dict[str, Any] = {}
    rounds: list[dict[str, Any]] = []  # core.analysis.results.ROUND_KEYS; kept as the engine wrote them
    versions: dict[str, Any] | None = {}  # None in hand-edited records: read as "none kept"
    provenance: dict[str, Any] | None = {}
    analyses: dict[str, Any] | None = {}  # core.analysis.flatness results, by key (redense, redense_reinit, ...)
    summary: dict[str, Any] | None = None  # only where the run folder is gone (Store.full_record)
    _order: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def parse(cls, data: Any) -> RunRecord:
        """The typed record of a dict read from disk; SddError (one line) if a field has the wrong type."""
        if not isinstance(data, dict):
            raise SddError(f"a run record is a {type(data).__name__}, not a record; `sdd-tui doctor` says how to "
                           f"recover")
        try:
            record = cls.model_validate(data)
        except ValidationError as error:
            raise SddError(_first_problem(data, error)) from None
        record._order = tuple(data)
        return record

    def to_dict(self) -> dict[str, Any]:
        """The record as stored: the keys it was parsed from in their order, then any set since."""
        dumped = self.model_dump(exclude_unset=True)
        ordered = {key: dumped[key] for key in self._order if key in dumped}
        return {**ordered, **dumped}

    def experiment_config(self, where: str = "") -> ExperimentConfig:
        """The run's config, validated (a stored config of an older version is upgraded first); `where` names
        it in an error (default: `run ID`)."""
        from ..config import stored_config, validate_config

        return validate_config(stored_config(self.config), where or f"run {self.id}")


def as_run_record(value: RunRecord | dict[str, Any]) -> RunRecord:
    """While readers move to typed records: a RunRecord as it is, a record dict parsed (RunRecord.parse).
    Called once at the start of a function that some callers still give a dict."""
    return value if isinstance(value, RunRecord) else RunRecord.parse(value)


class SweepRecord(BaseModel):
    """sweeps/ID.json (core.sweeps.sweep.new_sweep_record, plus the engine settings core.sweeps.engine_options stores)."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: str
    name: str = ""
    base: str | None = None
    preset: str | None = None
    config_file: str | None = None
    overrides: list[str] = []
    grid: dict[str, list[Any]] | None = {}
    seeds: list[StrictInt] = []
    levels: list[Any] | None = None
    members: list[dict[str, Any]] = []  # run_id, name, base, seed, config, ... (core.sweeps.sweep.expand_sweep)
    status: str = "created"
    created: Number | None = None
    ended: Number | None = None
    host: str | None = None
    pid: StrictInt | None = None
    errors: dict[str, Any] = {}  # by member run id: why it could not start
    engine: str | None = None
    # the other engine settings it was run with (core.sweeps.engine_options.EngineOptions.record_fields)
    address: str | None = None
    max_parallel: StrictInt | None = None
    cpus_per_member: Number | None = None
    worker_home: str | None = None
    pack: bool = False
    pack_size: StrictInt | None = None
    _order: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def parse(cls, data: Any) -> SweepRecord:
        """The typed record of a sweep read from disk; SddError (one line) if a field has the wrong type."""
        if not isinstance(data, dict):
            raise SddError(f"a sweep record is a {type(data).__name__}, not a record")
        try:
            record = cls.model_validate(data)
        except ValidationError as error:
            raise SddError(_first_problem(data, error, "sweep")) from None
        record._order = tuple(data)
        return record

    def to_dict(self) -> dict[str, Any]:
        """The record as stored: the keys it was parsed from in their order, then any set since."""
        dumped = self.model_dump(exclude_unset=True)
        return {**{key: dumped[key] for key in self._order if key in dumped}, **dumped}

    def member(self, run_id: str) -> dict[str, Any]:
        """The member whose run id is `run_id`; SddError naming the sweep if none."""
        found = next((m for m in self.members if m.get("run_id") == run_id), None)
        if found is None:
            raise SddError(f"sweep {self.id} has no member {run_id}; `sdd-tui sweeps show {self.id}` lists them")
        return found


def _first_problem(data: dict[str, Any], error: ValidationError, kind: str = "run") -> str:
    """'run ab12 has a status of type int (7); ...' (the wording of core.history.run_index.doc_problem)."""
    problem = error.errors()[0]
    location = problem["loc"]
    name = data.get("id") if isinstance(data.get("id"), str) else "?"
    if not location:
        return f"{kind} {name}: {problem['msg']}"
    field = location[0]
    if field not in data:
        return f"{kind} record has no {field}; `sdd-tui doctor` says how to recover"
    value = data[field]
    return (f"{kind} {name} has a {field} of type {type(value).__name__} ({repr(value)[:40]}); "
            f"`sdd-tui doctor` says how to recover")
