"""The sweeps screen and the new-sweep form through Textual's Pilot on a temporary home: the list and its
members from the store, opening a member, the form's one-line errors, and Start spawning `sdd-tui sweep`."""

from __future__ import annotations

import os
import time

import pytest
from textual.widgets import Checkbox, DataTable, Footer, Input, Select, Static
from typer.testing import CliRunner

from sdd_tui.app import SddApp
from sdd_tui.cli import app as cli_app
from sdd_tui.core.config import override
from sdd_tui.core.history.store import Store
from sdd_tui.core.runs.spawn import sdd_tui_command
from sdd_tui.core.sweeps.sweep import expand_sweep, new_sweep_record
from sdd_tui.screens.dashboard import DashboardScreen
from sdd_tui.screens.help import HelpScreen, key_rows
from sdd_tui.screens.new_sweep import NewSweepScreen
from sdd_tui.screens.sweeps import SweepsScreen

WAIT_LIMIT_S = 90.0  # a bound against hanging, not a speed claim
GRID = {"noise.rate": ["0.2", "0.4"], "train.lr": ["0.01", "0.05"]}


def make_app(home, **kwargs) -> SddApp:
    return SddApp(store=Store(home), blink=False, **kwargs)


def cells(table: DataTable, row: int) -> list[str]:
    return [str(cell) for cell in table.get_row_at(row)]


def finish(store: Store, member: dict, best: float) -> None:
    """Record a member as a finished run (dense round and one pruned round), as its process would."""
    rounds = [{"round": 0, "sparsity": 0.0, "test_acc": best - 0.1, "train_acc": 1.0},
              {"round": 1, "sparsity": 0.2, "test_acc": best, "train_acc": 1.0}]
    store.create_run({"id": member["run_id"], "name": member["name"], "config": member["config"],
                      "status": "finished", "started": time.time(), "rounds": rounds, "sweep": None})


def stored_sweep(home, name: str = "smoke") -> dict:
    """A packed sweep of 2 x 2 grid points x seeds 0,1 whose driver (this process) runs; two members finished,
    the others queued. No training: the members' runs are written straight into the store."""
    store = Store(home)
    overrides = ["prune.rounds=1", override("name", name)]
    members = expand_sweep("smoke", None, overrides, [0, 1], GRID)
    sweep = {**new_sweep_record(members, "smoke", None, overrides, [0, 1], GRID, "local"), "pack": True,
             "status": "running", "pid": os.getpid()}
    store.create_sweep(sweep)
    finish(store, members[0], 0.8)
    finish(store, members[3], 0.6)
    return sweep


class FakeProcess:
    def __init__(self, pid: int, code: int | None = None):
        self.pid, self.code = pid, code

    def poll(self):
        return self.code


@pytest.mark.slow
async def test_the_list_shows_a_stored_sweep_its_members_and_follows_the_store(home, wait_for):
    sweep = stored_sweep(home)
    members = sweep["members"]
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        screen = app.screen
        assert isinstance(screen, SweepsScreen)
        table = screen.query_one("#sweeps", DataTable)
        assert table.row_count == 1
        row = cells(table, 0)
        assert sweep["id"].startswith(row[0]) and row[1:5] == ["smoke", "running", "2/8", "yes"]
        assert row[5].endswith("…") and row[5].startswith("noise.rate=0.2,0.4 x train.")  # elided to fit 80
        assert sum(column.width + 2 for column in table.columns.values()) <= 80 - 1
        listed = screen.query_one("#members", DataTable)
        rows = [cells(listed, i) for i in range(listed.row_count)]
        assert [(r[1], r[3]) for r in rows] == [("0", "finished"), ("1", "queued"), ("0", "queued"),
                                                ("1", "finished"), *[(str(i % 2), "queued") for i in range(4)]]
        assert rows[0][2] == "rate=0.2 lr=0.01" and rows[0][4:] == ["1/1", "80.0%", "70.0%"]
        assert rows[3][2] == "rate=0.2 lr=0.05" and rows[3][5] == "60.0%"
        assert rows[1][4:] == ["-", "-", "-"]
        detail = str(screen.query_one("#sweep-detail", Static).render())
        assert "--grid noise.rate=0.2,0.4 --grid train.lr=0.01,0.05 --seeds 0,1 (local, packed)" in detail
        # another process finishes a member: the screen shows it within a refresh, no key pressed
        finish(Store(home), members[1], 0.7)
        await wait_for(pilot, lambda: cells(table, 0)[3] == "3/8" and cells(listed, 1)[3] == "finished",
                       "the refresh", limit=10)


@pytest.mark.slow
async def test_a_sweep_of_a_wrong_type_is_left_out_of_the_list_and_said_once(home):
    good, bad = stored_sweep(home), stored_sweep(home)
    Store(home).update_sweep(bad["id"], pid="123")  # a hand edit
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s", "r", "r")  # r: read the store again
        assert isinstance(app.screen, SweepsScreen) and list(app.screen.sweeps) == [good["id"]]
        assert app.screen.query_one("#sweeps", DataTable).row_count == 1
        said = [n.message for n in app._notifications if bad["id"] in n.message]
        assert said == [f"sweep {bad['id']} has a pid of type str ('123'); `sdd-tui doctor` says how to recover"]


@pytest.mark.slow
async def test_enter_opens_a_members_dashboard_and_a_queued_member_says_so(home):
    sweep = stored_sweep(home)
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s", "enter")  # Enter on the sweep moves to its members
        listed = app.screen.query_one("#members", DataTable)
        assert app.focused is listed
        await pilot.press("enter")
        assert isinstance(app.screen, DashboardScreen) and app.screen.run_id == sweep["members"][0]["run_id"]
        await pilot.press("escape")
        assert isinstance(app.screen, SweepsScreen)
        await pilot.press("down", "enter")
        assert isinstance(app.screen, SweepsScreen)
        messages = [n.message for n in app._notifications]
        assert any(f"{sweep['members'][1]['run_id']} has no run yet" in m for m in messages)


@pytest.mark.slow
async def test_keys_are_in_the_footer_and_help_and_a_name_shows_as_text(home):
    stored_sweep(home, name="[b]odd[/b] \x1b")
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        footer = " ".join(str(key.render()) for key in app.screen.query_one(Footer).children)
        assert "Sweeps" in footer and "Help" in footer  # both fit at 80 columns
        await pilot.press("s")
        rows = dict((what, keys) for keys, what in key_rows(app.screen))
        assert rows["New sweep"] == "n" and rows["Back"] == "esc" and rows["Refresh"] == "r"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        detail = str(app.screen.query_one("#sweep-detail", Static).render())
        assert "--set 'name=\"[b]odd[/b] " in detail  # as typed (shell-quoted), not read as markup


async def fill_form(pilot, app, seeds: str, grid: str = "", settings: str = "", pack: bool = False) -> NewSweepScreen:
    if not isinstance(app.screen, NewSweepScreen):
        await pilot.press("s", "n")
    form = app.screen
    assert isinstance(form, NewSweepScreen)
    form.query_one("#input-preset", Select).value = "smoke"
    form.query_one("#input-seeds", Input).value = seeds
    form.query_one("#input-grid", Input).value = grid
    form.query_one("#input-set", Input).value = settings
    form.query_one("#input-pack", Checkbox).value = pack
    await pilot.pause()
    return form


def help_line(form, name: str) -> tuple[bool, str]:
    widget = form.query_one(f"#help-{name}", Static)
    return widget.has_class("error"), str(widget.render())


@pytest.mark.slow
async def test_the_form_rejects_bad_seeds_grid_and_settings_with_one_line_each(home):
    launched = []
    app = make_app(home, spawn_with=lambda command, log: launched.append(command))
    async with app.run_test(size=(100, 40)) as pilot:
        form = await fill_form(pilot, app, seeds="0-x", grid="noise.nope=1")
        await pilot.press("ctrl+s")
        assert app.screen is form and launched == []
        assert help_line(form, "seeds") == (True, "--seeds '0-x': expected seeds like 0,1,2 or 0-4")
        error, text = help_line(form, "grid")
        assert error and text.startswith("--grid noise.nope: unknown field 'nope' in section 'noise'")
        assert not help_line(form, "set")[0]
        await fill_form(pilot, app, seeds="0,1", grid="noise.rate=0.2,1.5")  # only a member's config says no
        await pilot.press("ctrl+s")
        assert app.screen is form and launched == []
        assert not help_line(form, "seeds")[0]
        error, text = help_line(form, "grid")
        assert error and text.startswith("--grid noise.rate=1.5 seed=0:") and "\n" not in text
        await fill_form(pilot, app, seeds="", settings="prune.rounds=abc")
        await pilot.press("ctrl+s")
        error, text = help_line(form, "set")
        assert error and "prune.rounds" in text and not help_line(form, "grid")[0]
        assert app.screen is form and launched == []
    assert Store(home).list_sweeps() == [] and not (home / "sweeps").exists()


@pytest.mark.slow
async def test_start_spawns_the_cli_sweep_with_pack_and_a_failed_start_is_reported(home, wait_for):
    launched = []

    def fake_spawn(command, log):
        launched.append((command, log))
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("error: the machine said no\n")
        return FakeProcess(4242, code=2)

    app = make_app(home, spawn_with=fake_spawn)
    async with app.run_test(size=(100, 40)) as pilot:
        await fill_form(pilot, app, seeds="0-1", grid="noise.rate=0.2,0.4; train.lr=0.01,0.05",
                        settings="prune.rounds=1 train.epochs=1", pack=True)
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SweepsScreen)
        ((command, log),) = launched
        assert command == sdd_tui_command("sweep", "--preset", "smoke", "--seeds", "0-1", "--grid", "noise.rate=0.2,0.4",
                                          "--grid", "train.lr=0.01,0.05", "--set", "prune.rounds=1", "--set",
                                          "train.epochs=1", "--pack", "--home", str(home))
        assert log.parent == home / "sweeps" and log.name.startswith("started-") and log.suffix == ".log"
        messages = [n.message for n in app._notifications]
        assert any("sweep of 8 member(s) started in process 4242" in m for m in messages)
        await wait_for(pilot, lambda: any("the sweep process 4242 exited with 2: error: the machine said no" in n.message
                                          for n in app._notifications), "the failure", limit=10)
    assert Store(home).list_sweeps() == []  # the app itself ran nothing
    # the command is one the CLI takes as it is: its dry run packs the 8 members into one cohort
    dry = CliRunner().invoke(cli_app, [*command[4:], "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "packed: 1 cohort(s) (8 members), 0 member(s) alone" in dry.output


@pytest.mark.slow
async def test_dry_run_lists_the_members_and_the_pack_plan(home, wait_for):
    app = make_app(home, spawn_with=lambda command, log: None)
    async with app.run_test(size=(100, 40)) as pilot:
        form = await fill_form(pilot, app, seeds="0,1", grid="retrain.compare_reinit=false,true", pack=True)
        await pilot.press("ctrl+d")
        preview = form.query_one("#preview", Static)
        assert str(preview.render()).startswith("4 member(s): smoke retrain.compare_reinit=false seed=0")
        await wait_for(pilot, lambda: "packed: 1 cohort(s) (2 members), 2 member(s) alone" in str(preview.render()),
                       "the pack plan")
        assert app.screen is form
    assert Store(home).list_sweeps() == []


@pytest.mark.slow
async def test_a_sweep_started_from_the_form_runs_in_the_background_packed_to_the_end(home, wait_for):
    app = make_app(home)  # the real core.runs.spawn.spawn: a detached `sdd-tui sweep` process
    async with app.run_test(size=(100, 30)) as pilot:
        await fill_form(pilot, app, seeds="0,1", settings="prune.rounds=1", pack=True)
        await pilot.press("ctrl+s")
        screen = app.screen
        assert isinstance(screen, SweepsScreen)
        (launch,) = app.sweep_launches
        table = screen.query_one("#sweeps", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1 and cells(table, 0)[2] == "finished", "the sweep to finish")
        assert cells(table, 0)[1:5] == ["smoke", "finished", "2/2", "yes"]
        listed = screen.query_one("#members", DataTable)
        assert [cells(listed, i)[3] for i in range(listed.row_count)] == ["finished", "finished"]
        assert f"log {launch.log}" in str(screen.query_one("#sweep-detail", Static).render())
    assert launch.process.wait(WAIT_LIMIT_S) == 0
    (sweep,) = Store(home).list_sweeps()
    assert sweep["pack"] is True and sweep["pid"] == launch.process.pid != os.getpid()
    assert "packed: 1 cohort(s) (2 members), 0 member(s) alone" in launch.log.read_text()


@pytest.mark.slow
async def test_u_resumes_a_stopped_sweep_in_the_background_never_a_running_one(home, wait_for):
    sweep = stored_sweep(home)  # running: its driver is this process
    launched = []
    app = make_app(home, spawn_with=lambda command, log: launched.append(command) or FakeProcess(4343))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        screen = app.screen
        assert not screen.check_action("resume", ())
        await pilot.press("u")
        assert launched == []
        Store(home).update_sweep(sweep["id"], status="stopped")
        await pilot.press("r")
        assert screen.check_action("resume", ())
        await wait_for(pilot, lambda: "Resume" in " ".join(str(k.render()) for k in screen.query_one(Footer).children),
                       "u Resume in the footer", limit=10)
        await pilot.press("u")
        assert launched == [sdd_tui_command("sweep", "--resume", sweep["id"], "--home", str(home))]
        assert any(f"resuming {sweep['id']} in process 4343" in n.message for n in app._notifications)
