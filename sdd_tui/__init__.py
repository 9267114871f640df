"""sdd-tui: the command line and the Textual app over the `sdd_tui.core` engine.

`from sdd_tui import load_runs` gives the run history as a table in a notebook; importing this
package imports nothing else (the CLI's start-up time depends on it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.2.0"


def load_runs(home: str | Path | None = None, where: list[str] | tuple[str, ...] = (),
              status: list[str] | tuple[str, ...] = (), tags: list[str] | tuple[str, ...] = (),
              sweep: str | None = None, epochs: bool = False, as_frame: bool = False) -> Any:
    """The runs of a store as one row per run and round: the run's fields, config fields as
    `noise.rate`, every round metric, tags and `provenance.*` (oldest run first).

    `where` takes `sdd-tui runs --where` conditions ("noise.rate=0.4", "best_acc>0.8"); `status`,
    `tags` and `sweep` (an id or unique prefix) select too. `epochs=True` adds a row per epoch from
    each run's events.jsonl (column `row`: "round" or "epoch"). Returns a list of dicts, or with
    `as_frame=True` a pandas DataFrame (`pip install 'sdd-tui[pandas]'`).
    """
    from sdd_tui.core.analysis.run_table import load_rows
    from sdd_tui.core.errors import SddError
    from sdd_tui.core.history.query import RunQuery
    from sdd_tui.core.history.store import Store

    if as_frame:
        try:
            import pandas
        except ImportError:
            raise SddError("load_runs(as_frame=True) needs pandas: pip install 'sdd-tui[pandas]'") from None
    store = Store(home)
    rows = load_rows(store, RunQuery.parse_in(store, list(where), list(status), list(tags), sweep), epochs)
    return pandas.DataFrame(rows) if as_frame else rows
