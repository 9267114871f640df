"""Screenshots (Textual's SVG) of home and a finished dashboard at 80x24 and 120x40, checked by their text.

pytest-textual-snapshot would pin pytest below 9 in the shared environment (through syrupy 4.8),
so these save SVGs with App.save_screenshot and assert on what they show instead.
"""

from __future__ import annotations

import html
import re

import pytest
from textual.widgets import Footer

from sdd_tui.app import SddApp
from sdd_tui.core.history.store import Store
from sdd_tui.screens.dashboard import DashboardScreen
from sdd_tui.widgets.charts import SddChart

SIZES = ((80, 24), (120, 40))


def svg_text(svg: str) -> str:
    """The characters an SVG screenshot shows, in order."""
    return html.unescape("".join(re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S))).replace("\xa0", " ")


async def screenshots(home, run_id: str, size: tuple[int, int], folder, wait_for) -> tuple[str, str]:
    app = SddApp(store=Store(home), blink=False)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        for _ in range(100):  # the footer composes its keys a few frames later on a busy machine
            keys = app.screen.query_one(Footer).children
            if keys and all(key.region.width for key in keys):  # composed and laid out
                break
            await pilot.pause(0.05)
        await pilot.pause()  # and painted
        home_svg = app.save_screenshot(f"home-{size[0]}x{size[1]}.svg", str(folder))
        app.open_run(run_id)
        await pilot.pause()
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await wait_for(pilot, lambda: len(dashboard.query_one(SddChart).rounds) >= 4, "4 rounds on the chart")
        await pilot.pause(0.3)  # one more redraw tick
        dashboard_svg = app.save_screenshot(f"dashboard-{size[0]}x{size[1]}.svg", str(folder))
        await pilot.press("c")  # the screenshot key writes into the run's folder
        await pilot.pause()
    with open(home_svg, encoding="utf-8") as a, open(dashboard_svg, encoding="utf-8") as b:
        return svg_text(a.read()), svg_text(b.read())


@pytest.mark.slow
async def test_home_and_finished_dashboard_at_80x24_and_120x40(run_experiment, home, smoke_config, tmp_path,
                                                                wait_for):
    run_id, status, _ = run_experiment(smoke_config(), home)
    assert status == "finished"
    for size in SIZES:
        home_text, dashboard_text = await screenshots(home, run_id, size, tmp_path, wait_for)
        for expected in ("Presets", "digits-noise40", "smoke", "finished", "Recent runs", "New", "History", "Quit"):
            assert expected in home_text, (size, expected)
        for expected in ("FINISHED", run_id, "accuracy % vs sparsity", "sparsity", "0%", "20%", "dense",
                         "round 3/3 done", "Report", "Export", "Back"):  # `c Screenshot`: in `?` and Ctrl+P
            assert expected in dashboard_text, (size, expected)
        assert "Pause" not in dashboard_text and "Detach" not in dashboard_text  # not a live run
        wide = size[0] >= 120
        assert ("learning distance vs sparsity" in dashboard_text) == wide  # narrow: one chart at a time
        assert ("Chart" in dashboard_text) != wide  # the key that cycles charts exists only when narrow
    saved = list(Store(home).run_dir(run_id).glob("*.svg"))
    assert saved and "FINISHED" in svg_text(saved[0].read_text(encoding="utf-8"))
