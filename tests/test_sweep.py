"""Sweeps: grid parsing and expansion, GPU slots, the local queue, aggregation, and a local sweep end to end."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import Store
from sdd_tui.core.sweeps.sweep import (
    aggregate_rounds,
    expand_sweep,
    mean_std,
    new_sweep_record,
    parse_grid,
    parse_seeds,
    split_values,
    sweep_curves,
    sweep_status,
    unfinished_members,
)  # fmt: skip
from sdd_tui.core.sweeps.sweep_local import local_slots, member_device, run_local, threads_per_member
from sdd_tui.sweep_plot import sweep_figure

runner = CliRunner()


# ---------------------------------------------------------------------------- parsing and expansion


def test_seeds_accept_lists_and_ranges():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("3-5,0") == [3, 4, 5, 0]


@pytest.mark.parametrize("text", ["x", "0,-1", "1,1", "5-3", "0,,1"])
def test_bad_seeds_are_one_line_errors(text):
    with pytest.raises(SddError, match="--seeds"):
        parse_seeds(text)


def test_values_split_outside_brackets_and_quotes():
    assert split_values("[300,100], [64]") == ["[300,100]", "[64]"]
    assert split_values('"a,b",c') == ['"a,b"', "c"]


def test_grid_keeps_order_and_checks_keys():
    grid = parse_grid(["noise.rate=0.2,0.4,0.8", "prune.method=magnitude,random"])
    assert list(grid) == ["noise.rate", "prune.method"]
    assert grid["noise.rate"] == ["0.2", "0.4", "0.8"]


@pytest.mark.parametrize(("texts", "fragment"), [
    (["noise.rat=0.2"], "unknown field 'rat'"),
    (["bogus.x=1"], "unknown field 'bogus'"),
    (["noise=0.2"], "is a section"),
    (["noise.rate.x=1"], "is a field, not a section"),
    (["runtime.seed=1,2"], "--seeds"),
    (["noise.rate"], "expected section.field=v1,v2"),
    (["noise.rate=0.2,"], "empty value"),
    (["noise.rate=0.2", "noise.rate=0.4"], "given twice"),
])  # fmt: skip
def test_bad_grid_is_a_one_line_error(texts, fragment):
    with pytest.raises(SddError, match=fragment) as error:
        parse_grid(texts)
    assert "\n" not in str(error.value)


def test_expansion_is_every_combination_with_readable_names():
    grid = parse_grid(["noise.rate=0.2,0.4", "model.hidden=[32,16],[8]"])
    members = expand_sweep("smoke", None, ["train.epochs=1"], [0, 1], grid)
    assert [m["name"] for m in members[:3]] == [
        "smoke noise.rate=0.2 model.hidden=[32,16] seed=0",
        "smoke noise.rate=0.2 model.hidden=[32,16] seed=1",
        "smoke noise.rate=0.2 model.hidden=[8] seed=0",
    ]
    assert len(members) == 8 and len({m["run_id"] for m in members}) == 8
    combos = {(m["config"]["noise"]["rate"], tuple(m["config"]["model"]["hidden"]), m["config"]["runtime"]["seed"])
              for m in members}
    assert combos == {(r, h, s) for r in (0.2, 0.4) for h in ((32, 16), (8,)) for s in (0, 1)}
    assert all(m["config"]["train"]["epochs"] == 1 for m in members)
    assert members[7]["point"] == {"noise.rate": "0.4", "model.hidden": "[8]"}


def test_without_seeds_a_member_uses_the_config_seed():
    members = expand_sweep("smoke", None, ["runtime.seed=7"], None, {})
    assert [(m["name"], m["seed"]) for m in members] == [("smoke seed=7", 7)]


def test_a_bad_grid_value_names_the_member_before_anything_runs(home):
    with pytest.raises(SddError, match=r"--grid noise.rate=1.5 seed=0: .*noise.rate"):
        expand_sweep("smoke", None, [], [0], parse_grid(["noise.rate=0.2,1.5"]))
    result = runner.invoke(app, ["sweep", "--preset", "smoke", "--grid", "noise.rate=0.2,1.5", "--home", str(home)])
    assert result.exit_code == 2 and "error: --grid noise.rate=1.5" in result.output
    assert Store(home).list_sweeps() == [] and Store(home).list_runs() == []


# ---------------------------------------------------------------------------- GPU slots and the local queue


def test_one_slot_per_gpu_or_one_cpu_slot():
    assert local_slots(4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert local_slots(0) == [None]
    assert local_slots(0, max_parallel=2) == [None, None]
    assert local_slots(2, max_parallel=3) == ["cuda:0", "cuda:1", "cuda:0"]
    assert local_slots(4, max_parallel=2) == ["cuda:0", "cuda:1"]


GPU_PROBE = """
import sys
import sdd_tui.core.sweeps.sweep_local as local
local.GPU_DEVICE_FILES = (sys.argv[1],)
count = local.visible_gpus()
print(count, "torch" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.parametrize("device_file", ["/nonexistent/nvidia[0-9]*", sys.executable])
def test_a_sweep_driver_imports_torch_to_count_gpus_only_where_a_gpu_driver_left_a_device_file(device_file):
    shown = subprocess.run([sys.executable, "-P", "-c", GPU_PROBE, device_file], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    count, imported = shown.stdout.split()
    if device_file == sys.executable:  # a device file: torch counts
        assert imported == "True" and int(count) >= 0
    else:
        assert (count, imported) == ("0", "False")


def test_members_at_once_share_the_cpu_threads():
    assert threads_per_member(16, 8) == 2
    assert threads_per_member(2, 1) == 2
    assert threads_per_member(2, 3) == 1


def test_member_device_follows_the_slot_unless_pinned_to_cpu():
    assert member_device("auto", "cuda:1") == "cuda:1"
    assert member_device("cuda:0", "cuda:3") == "cuda:3"
    assert member_device("cpu", "cuda:1") == "cpu"
    assert member_device("auto", None) == "auto"


class FakeProcess:
    """Exits after a number of polls; exits 130 once signalled (as a member stopping cleanly does)."""

    def __init__(self, polls: int, log: list):
        self.polls, self.log, self.signals = polls, log, []

    def poll(self):
        if self.signals:
            return 130
        self.polls -= 1
        return 0 if self.polls <= 0 else None

    def send_signal(self, signum):
        self.signals.append(signum)

    def kill(self):
        self.log.append("killed")


def _fake_members(count: int) -> list[dict]:
    return [{"run_id": f"r{i}", "name": f"m{i}", "config": {"runtime": {"device": "auto"}}} for i in range(count)]


def test_local_queue_runs_one_member_per_gpu_at_a_time():
    running: dict[str, tuple[str, FakeProcess]] = {}
    overlaps, launched = [], []

    def launch(job, device):
        (member,) = job
        for run_id, (_, process) in list(running.items()):  # forget the ones that ended
            if process.polls <= 0:
                del running[run_id]
        overlaps.append(sorted(d for d, _ in running.values()) + [device])
        process = FakeProcess(polls=1 + len(launched) % 3, log=[])
        running[member["run_id"]] = (device, process)
        launched.append((member["run_id"], device))
        return process

    exit_codes, interrupted = run_local([[m] for m in _fake_members(5)], local_slots(2), launch, poll_seconds=0)
    assert not interrupted and exit_codes == {f"r{i}": 0 for i in range(5)}
    assert [run_id for run_id, _ in launched] == ["r0", "r1", "r2", "r3", "r4"]
    assert all(len(devices) <= 2 and len(set(devices)) == len(devices) for devices in overlaps)
    assert {device for _, device in launched} == {"cuda:0", "cuda:1"}


def test_ctrl_c_stops_running_members_and_starts_no_more():
    processes = []

    def launch(job, device):
        processes.append(FakeProcess(polls=10**6, log=[]))
        return processes[-1]

    def report(kind, member, detail):
        if kind == "started" and member["run_id"] == "r1":
            raise KeyboardInterrupt

    exit_codes, interrupted = run_local([[m] for m in _fake_members(4)], local_slots(2), launch, report,
                                        poll_seconds=0)
    assert interrupted and len(processes) == 2
    assert [p.signals for p in processes] == [[signal.SIGINT], [signal.SIGINT]]
    assert exit_codes == {"r0": 130, "r1": 130}


# ---------------------------------------------------------------------------- aggregation


def test_mean_and_sample_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([0.5]) == (0.5, 0.0)


def test_rounds_aggregate_across_seeds():
    seed0 = [{"round": 0, "sparsity": 0.0, "test_acc": 0.5, "train_acc": 0.9},
             {"round": 1, "sparsity": 0.2, "test_acc": 0.6, "train_acc": None}]
    seed1 = [{"round": 0, "sparsity": 0.0, "test_acc": 0.7, "train_acc": 1.0}]
    curve = aggregate_rounds([seed0, seed1], metrics=("test_acc", "train_acc"))
    assert [(r["round"], r["seeds"]) for r in curve] == [(0, 2), (1, 1)]
    assert curve[0]["test_acc_mean"] == pytest.approx(0.6)
    assert curve[0]["test_acc_std"] == pytest.approx(math.sqrt(0.02))
    assert curve[0]["train_acc_mean"] == pytest.approx(0.95)
    assert (curve[1]["test_acc_mean"], curve[1]["test_acc_std"]) == (pytest.approx(0.6), 0.0)
    assert (curve[1]["train_acc_mean"], curve[1]["train_acc_std"]) == (None, None)
    assert curve[1]["remaining_fraction"] == pytest.approx(0.8)


def test_sweep_status_words():
    assert sweep_status(["finished", "finished"]) == "finished"
    assert sweep_status(["finished", "failed", "stopped"]) == "failed"
    assert sweep_status(["finished", "queued"]) == "stopped"


def _stored_sweep(home, accuracies: dict[tuple[str, int], list[float]]) -> dict:
    """A sweep whose member runs are written straight into the store (no training)."""
    store = Store(home)
    grid = {"noise.rate": sorted({rate for rate, _ in accuracies})}
    members = expand_sweep("smoke", None, [], sorted({seed for _, seed in accuracies}), grid)
    sweep = new_sweep_record(members, "smoke", None, [], [0, 1], grid, "local")
    store.create_sweep(sweep)
    for member in members:
        key = (member["point"]["noise.rate"], member["seed"])
        rounds = [{"round": i, "sparsity": 1 - 0.8**i, "test_acc": acc, "train_acc": 1.0}
                  for i, acc in enumerate(accuracies[key])]
        store.create_run({"id": member["run_id"], "name": member["name"], "config": member["config"],
                          "status": "finished", "started": 0, "rounds": rounds, "sweep": sweep["id"]})
    return sweep


def test_sweep_curves_group_members_by_grid_point(home):
    sweep = _stored_sweep(home, {("0.2", 0): [0.5, 0.6], ("0.2", 1): [0.7, 0.8],
                                 ("0.4", 0): [0.3, 0.2], ("0.4", 1): [0.3, 0.4]})
    curves = sweep_curves(Store(home), sweep["id"][:8])
    assert [c["label"] for c in curves] == ["noise.rate=0.2", "noise.rate=0.4"]
    assert [c["seeds"] for c in curves] == [[0, 1], [0, 1]]
    assert [r["test_acc_mean"] for r in curves[0]["rounds"]] == [pytest.approx(0.6), pytest.approx(0.7)]
    assert [r["test_acc_mean"] for r in curves[1]["rounds"]] == [pytest.approx(0.3), pytest.approx(0.3)]
    assert curves[1]["rounds"][1]["test_acc_std"] == pytest.approx(math.sqrt(0.02))


def test_sweeps_show_and_plot(home, tmp_path):
    sweep = _stored_sweep(home, {("0.2", 0): [0.5, 0.6], ("0.2", 1): [0.7, 0.8]})
    listing = runner.invoke(app, ["sweeps", "--home", str(home)])
    assert listing.exit_code == 0 and sweep["id"] in listing.output and "2/2" in listing.output
    shown = runner.invoke(app, ["sweeps", "show", sweep["id"], "--home", str(home)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "60.0 ± 14.1" in shown.output and "70.0 ± 14.1" in shown.output
    as_json = json.loads(runner.invoke(app, ["sweeps", "show", sweep["id"], "--json", "--home", str(home)]).output)
    assert [m["status"] for m in as_json["members"]] == ["finished", "finished"]
    assert as_json["curves"][0]["rounds"][1]["test_acc_mean"] == pytest.approx(0.7)
    figure = tmp_path / "sweep.png"
    plotted = runner.invoke(app, ["sweeps", "plot", sweep["id"], "-o", str(figure), "--home", str(home)])
    assert plotted.exit_code == 0, plotted.output
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(app, ["sweeps", "plot", sweep["id"], "-o", str(figure), "-m", "nope", "--home", str(home)])
    assert bad.exit_code == 2 and "error: --metric" in bad.output


def test_both_sweep_plot_commands_write_the_one_sweep_figure(home, tmp_path):
    sweep = _stored_sweep(home, {("0.2", 0): [0.5, 0.6, 0.7], ("0.2", 1): [0.7, 0.8, 0.6],
                                 ("0.4", 0): [0.4, 0.5, 0.6], ("0.4", 1): [0.5, 0.4, 0.5]})
    figure = sweep_figure(Store(home), sweep["id"][:8], "train_acc")
    (axes,) = figure.axes
    labels = [line.get_label() for line in axes.get_lines()]
    assert [label.split(" (")[0] for label in labels] == [f"smoke noise.rate={rate}" for rate in ("0.2", "0.4")]
    assert all(label.endswith("(2 seeds: 0, 1)") for label in labels)  # one mean curve per grid point
    assert figure.get_suptitle() == f"{sweep['name']} ({sweep['id']})"
    written = {}
    for command in (["sweeps", "plot", sweep["id"]], ["plot", "--sweep", sweep["id"]]):
        path = tmp_path / f"{command[0]}.png"
        result = runner.invoke(app, [*command, "-o", str(path), "-m", "test_acc", "--home", str(home)])
        assert result.exit_code == 0 and f"wrote {path}" in result.output, result.output
        written[command[0]] = path.read_bytes()
    assert written["sweeps"] == written["plot"] and written["plot"][:8] == b"\x89PNG\r\n\x1a\n"
    for command in (["sweeps", "plot", sweep["id"]], ["plot", "--sweep", sweep["id"]]):
        bad = runner.invoke(app, [*command, "-o", str(tmp_path / "f.jpg"), "--home", str(home)])
        assert bad.exit_code == 2 and "error: cannot write f.jpg" in bad.output, bad.output


def test_unknown_sweep_is_a_one_line_error(home):
    result = runner.invoke(app, ["sweeps", "show", "sw-nope", "--home", str(home)])
    assert result.exit_code == 2 and "error: no sweep 'sw-nope'" in result.output


@pytest.mark.parametrize(("field", "value"), [("pid", "123"), ("members", "x"), ("pack", "yes")])
def test_a_sweep_field_of_the_wrong_type_is_a_one_line_error_that_doctor_names(home, tmp_path, field, value):
    sweep = _stored_sweep(home, {("0.2", 0): [0.5, 0.6], ("0.2", 1): [0.7, 0.8]})
    Store(home).update_sweep(sweep["id"], **{field: value})
    stored = (home / "sweeps" / f"{sweep['id']}.json").read_bytes()
    said = f"error: sweep {sweep['id']} has a {field} of type str ({value!r}); `sdd-tui doctor` says how to recover"
    for command in (["sweeps"], ["sweeps", "show", sweep["id"]], ["sweeps", "show", sweep["id"], "--json"],
                    ["sweeps", "plot", sweep["id"], "-o", str(tmp_path / "f.png")], ["sweep", "--resume", sweep["id"]]):
        result = runner.invoke(app, [*command, "--home", str(home)])
        assert result.exit_code == 2 and result.output.splitlines() == [said], (command, result.output)
    assert (home / "sweeps" / f"{sweep['id']}.json").read_bytes() == stored and not (tmp_path / "f.png").exists()
    doctor = runner.invoke(app, ["doctor", "--home", str(home)])
    assert doctor.exit_code == 1 and f"sweep {sweep['id']} has a {field} of type str" in doctor.output


# ---------------------------------------------------------------------------- a local sweep end to end


@pytest.mark.slow
def test_local_sweep_of_two_seeds_end_to_end_and_resume(home):
    args = ["sweep", "--preset", "smoke", "--seeds", "0,1", "--set", "prune.rounds=1", "--max-parallel", "2",
            "--home", str(home)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    store = Store(home)
    (sweep,) = store.list_sweeps()
    assert sweep["status"] == "finished" and sweep["engine"] == "local" and sweep["max_parallel"] == 2
    runs = {r["id"]: r for r in store.list_runs()}
    member_ids = [m["run_id"] for m in sweep["members"]]
    assert sorted(runs) == sorted(member_ids)
    assert all(runs[i]["sweep"] == sweep["id"] and runs[i]["status"] == "finished" for i in member_ids)
    assert [runs[i]["config"]["runtime"]["seed"] for i in member_ids] == [0, 1]
    assert all(len(runs[i]["rounds"]) == 2 for i in member_ids)
    assert runs[member_ids[0]]["rounds"][0]["test_acc"] != runs[member_ids[1]]["rounds"][0]["test_acc"]
    assert all((store.run_dir(i) / "output.log").exists() for i in member_ids)

    # a member left unfinished is the only one a resume runs, from its checkpoint
    store.update_run(member_ids[1], status="stopped")
    assert [m["run_id"] for m in unfinished_members(store, store.sweep(sweep["id"]))] == [member_ids[1]]
    resumed = runner.invoke(app, ["sweep", "--resume", sweep["id"][:12], "--home", str(home)])
    assert resumed.exit_code == 0, resumed.output
    assert "1 of 2 member(s) to run" in resumed.output
    events = [json.loads(line) for line in store.events_path(member_ids[1]).read_text().splitlines()]
    assert [e["resumed_from_round"] for e in events if e["type"] == "RunStarted"] == [-1, 1]
    assert store.get_run(member_ids[1])["status"] == "finished"
    again = runner.invoke(app, ["sweep", "--resume", sweep["id"], "--home", str(home)])
    assert again.exit_code == 0 and "nothing to resume" in again.output


def test_ray_engine_without_ray_is_a_one_line_error(home, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the `ray` extra were not installed
    result = runner.invoke(app, ["sweep", "--preset", "smoke", "--engine", "ray", "--home", str(home)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --engine ray needs Ray: pip install 'sdd-tui[ray]'"
    assert Store(home).list_sweeps() == []


def test_resume_takes_only_the_sweep_id(home):
    result = runner.invoke(app, ["sweep", "--resume", "sw-x", "--preset", "smoke", "--home", str(home)])
    assert result.exit_code == 2 and "error: --resume takes the sweep id only" in result.output


def test_plot_sweep_draws_the_members_as_one_mean_and_std_curve(home, tmp_path):
    sweep = _stored_sweep(home, {("0.2", 0): [0.6, 0.55, 0.5, 0.7, 0.8, 0.6], ("0.2", 1): [0.62, 0.5, 0.52, 0.72, 0.78, 0.5]})
    figure = tmp_path / "fig.png"
    plotted = runner.invoke(app, ["plot", "--sweep", sweep["id"], "-o", str(figure), "--home", str(home)])
    assert plotted.exit_code == 0, plotted.output
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000
    both = runner.invoke(app, ["plot", sweep["members"][0]["run_id"], "--sweep", sweep["id"], "-o", str(figure),
                               "--home", str(home)])
    assert both.exit_code == 2 and "one of them" in both.output
