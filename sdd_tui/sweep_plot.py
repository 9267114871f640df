"""A sweep's figure, the one both `sdd-tui sweeps plot ID` and `sdd-tui plot --sweep ID` write: core.analysis.figures'
Figure 1 over the sweep's members that have finished rounds. Members differing only by seed (and a seed's
one-shot levels) are one curve, mean +- std; each grid point is its own curve; phases shaded, branches dashed,
on core.analysis.sparsity_axis.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from sdd_tui.core.analysis.figures import check_metric, figure_one
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import Store
from sdd_tui.core.sweeps.sweep import member_records


def sweep_figure(store: Store, sweep_id: str, metric: str = "test_acc") -> Figure:
    """The figure of sweep `sweep_id` (an id or unique prefix), titled with the sweep's name and id."""
    metric = check_metric(metric)
    sweep = store.sweep(sweep_id)
    records = member_records(store, sweep)
    drawn = [records[m["run_id"]] for m in sweep.members if m["run_id"] in records and records[m["run_id"]].rounds]
    if not drawn:
        raise SddError(f"sweep {sweep.id!r} has no finished rounds yet; `sdd-tui sweeps show {sweep.id}`")
    return figure_one(drawn, metric, title=f"{sweep.name} ({sweep.id})")
