"""The dashboard's footer at 80 columns: every key it shows fits, for a run training in the app (the most keys:
unpause, stop, detach, the chart key of narrow terminals, ...)."""

from __future__ import annotations

import pytest
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from sdd_tui.app import SddApp
from sdd_tui.core.history.store import Store


def shown_keys(screen) -> list[FooterKey]:
    return list(screen.query_one(Footer).query(FooterKey))


@pytest.mark.slow
async def test_every_footer_key_of_a_paused_run_training_here_fits_in_80_columns(home, smoke_config, wait_for):
    app = SddApp(store=Store(home), blink=False, start=(smoke_config("train.epochs=10000"), "smoke"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.live is not None and len(app.live.view.epochs) >= 1, "training")
        await pilot.press("p")
        labels = lambda: " ".join(str(key.render()) for key in shown_keys(app.screen))  # noqa: E731
        await wait_for(pilot, lambda: "Unpause" in labels() and "Detach" in labels(), "the paused run's keys")
        for what in ("Unpause", "Stop", "Detach", "Chart", "Rounds", "Export", "Report", "Back", "Help"):
            assert what in labels(), what
        keys = shown_keys(app.screen)
        assert max(key.region.right for key in keys) <= 80, [(str(k.render()), k.region) for k in keys]
        assert all(key.region.width >= len(str(key.render()).strip()) for key in keys), labels()
        await pilot.resize_terminal(200, 60)
        await wait_for(pilot, lambda: not app.screen.query_one(Footer).compact, "keys spaced out at 200 columns")
        live = app.live
        live.control.stop.set()
        await wait_for(pilot, lambda: not live.running, "the run to stop")
