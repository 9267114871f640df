"""`R` in the app (a finished run's dashboard, the history's selection): write `sdd-tui report` of the runs
into <home>/reports/ in a thread worker (matplotlib takes seconds), then name the file in a notification."""

from __future__ import annotations

from textual.screen import Screen

from sdd_tui.core.errors import SddError


def write_report_of(screen: Screen, run_ids: list[str]) -> None:
    """Start writing the report of `run_ids`; a run still training is a warning and nothing is written."""
    from sdd_tui.core.history.store import display_status
    from sdd_tui.core.paths import report_file

    app = screen.app
    if not run_ids:
        screen.notify("no run to report on: highlight a run or select some with space", severity="warning")
        return
    try:
        training = [run_id for run_id in run_ids if display_status(app.store.find(run_id)) == "running"]
    except SddError as error:
        screen.notify(str(error), severity="error")
        return
    if training:
        screen.notify(f"{training[0]} is still training; press R once it has finished", severity="warning")
        return
    target = report_file(app.store.home, run_ids)

    def write() -> None:
        from sdd_tui.core.analysis.report import select_runs, write_report

        try:
            path = write_report(select_runs(app.store, run_ids, []), target)
        except SddError as error:
            app.call_from_thread(app.notify, str(error), severity="error", timeout=10)
            return
        app.call_from_thread(app.notify, f"report written: {path}", timeout=15)

    screen.notify(f"writing the report of {len(run_ids)} run(s) ...")
    screen.run_worker(write, thread=True, group="report", name="report")
