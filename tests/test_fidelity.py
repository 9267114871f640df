"""Fidelity to the official code (he-zh/sparse-double-descent on open_lth): the warm-up, the random-prune
start, the official re-dense, one seed tree, nested one-shot random masks, the official data order."""

from __future__ import annotations

import bisect
import itertools
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sdd_tui.cli import app
from sdd_tui.core import seeds
from sdd_tui.core.config import resolve_config, stored_config, validate_config
from sdd_tui.core.data.datasets import batches_per_epoch
from sdd_tui.core.engine import pruning
from sdd_tui.core.engine.models import build_model, prunable_names
from sdd_tui.core.engine.training import Branch, Control, Trainer, lr_schedule
from sdd_tui.core.errors import SddError
from sdd_tui.core.history.store import Store
from sdd_tui.core.paths import RunPaths
from sdd_tui.core.seeds import Purpose, stream_seed

runner = CliRunner()
SMALL = ("prune.rounds=2", "train.epochs=2", "model.hidden=[24, 12]")


def tiny(*overrides: str):
    return resolve_config("smoke", overrides=[*SMALL, *overrides])


def official_lrs(base: float, gamma: float, milestones: list[int], warmup: int, steps: int) -> list[float]:
    """The LR of each of the first `steps` optimizer steps, as open_lth's get_lr_schedule and train loop give
    them: a LambdaLR of the product of gamma ** bisect(milestones, it) and min(1, it / warmup), stepped
    after every optimizer step."""
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=base)
    def factor(it: int) -> float:
        return gamma ** bisect.bisect(milestones, it) * (min(1.0, it / warmup) if warmup else 1.0)

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return lrs


def trained_lrs(config, monkeypatch, start_iteration: int = 0) -> list[float]:
    """The LR of every optimizer step a Trainer takes on `config` from `start_iteration`."""
    seen = []
    original = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    from sdd_tui.core.data.datasets import load_dataset

    data = load_dataset(config.data, config.noise, Path("unused"), 0)  # synthetic data: no files
    model = build_model(config.model, data.input_shape, data.num_classes, 0)
    Trainer(model, data, config.train, {}, Control()).train(start_iteration=start_iteration)
    return seen


# ---------------------------------------------------------------------------- warm-up


@pytest.mark.parametrize("warmup", ["6", '"2ep"', '"6it"'])
def test_the_lr_of_the_first_iterations_is_the_official_warmup(monkeypatch, warmup):
    # smoke: 256 samples / batch 64 = 4 iterations per epoch; 3 epochs, a drop at epoch 2
    config = tiny(f"train.warmup={warmup}", "train.epochs=3", "train.milestones=[2]", "train.gamma=0.1")
    per_epoch = batches_per_epoch(256, config.train.batch_size)
    assert config.train.warmup_iterations(per_epoch) == 6 + 2 * (warmup == '"2ep"')
    expected = official_lrs(0.05, 0.1, [2 * per_epoch], config.train.warmup_iterations(per_epoch), 12)
    assert expected[0] == 0.0 and expected[1] == pytest.approx(0.05 / config.train.warmup_iterations(per_epoch))
    assert trained_lrs(config, monkeypatch) == pytest.approx(expected, abs=1e-12)


def test_a_rewound_round_starts_with_the_schedule_and_warmup_the_dense_run_had_at_t(monkeypatch):
    config = tiny("train.warmup=6", "train.epochs=3", "train.milestones=[2]")
    expected = official_lrs(0.05, 0.1, [8], 6, 12)
    assert trained_lrs(config, monkeypatch, start_iteration=3) == pytest.approx(expected[3:], abs=1e-12)
    schedule = lr_schedule(config.train, 4, None)
    assert [schedule(i) for i in range(12)] == pytest.approx(expected, abs=1e-12)


def test_warmup_takes_iterations_or_epochs_and_the_tiny_imagenet_preset_warms_up_five_epochs():
    preset = resolve_config("resnet101-tinyimagenet-noise20")
    assert preset.train.warmup == "5ep"
    per_epoch = batches_per_epoch(100_000, preset.train.batch_size)
    assert per_epoch == 196 and preset.train.warmup_iterations(per_epoch) == 980  # the official warm-up's end
    assert tiny().train.warmup == 0 and tiny("train.warmup=980").train.warmup_iterations(7) == 980
    with pytest.raises(SddError, match=r"train\.warmup: .*'5ep'"):
        tiny("train.warmup=5epochs")
    with pytest.raises(SddError, match=r"train\.warmup"):
        tiny("train.warmup=-1")


# ---------------------------------------------------------------------------- one seed tree


def test_no_two_streams_of_different_seeds_purposes_or_rounds_coincide():
    keys = {Purpose.DATA_ORDER: lambda r: (r, 0, 0)}  # (round, epoch, branch stream); the others: (round,)
    drawn = {}
    for seed, purpose, round_index in itertools.product(range(100), Purpose, range(41)):
        key = keys.get(purpose, lambda r: (r,))(round_index)
        drawn[(seed, purpose, round_index)] = stream_seed(seed, purpose, *key)
    assert len(set(drawn.values())) == len(drawn) == 100 * len(Purpose) * 41
    assert all(0 <= value < 2**63 for value in drawn.values())
    # the epochs and branches of one round's data order are streams of their own too
    orders = {stream_seed(0, Purpose.DATA_ORDER, 1, epoch, stream) for epoch in range(50) for stream in range(3)}
    assert len(orders) == 150


def test_the_old_scheme_is_kept_for_old_runs_and_it_collided():
    assert stream_seed(0, Purpose.FRESH_INIT, 1, scheme=1) == stream_seed(2, Purpose.INIT, scheme=1)  # the bug
    assert stream_seed(3, Purpose.DATA_ORDER, 2, 5, 1, scheme=1) == ((3 * 1_000_003 + 2) * 10_007 + 5) * 7 + 1
    assert stream_seed(3, Purpose.RANDOM_MASKS, 2, scheme=1) == 3 * 7919 + 2 + 104_729
    old = {"runtime": {"seed": 3}}  # a run.json config saved before runtime.seed_scheme existed
    assert validate_config(stored_config(old)).runtime.seed_scheme == 1
    assert validate_config(stored_config({"runtime": {"seed": 3, "seed_scheme": 2}})).runtime.seed_scheme == 2
    assert tiny().runtime.seed_scheme == 2  # every new run


def test_a_run_on_the_old_scheme_draws_the_old_streams(run_experiment, tmp_path, monkeypatch):
    from sdd_tui.core.engine.run_models import RunModels

    config = tiny("runtime.seed_scheme=1", "prune.rounds=1", "train.epochs=1", "retrain.mode=scratch")
    built = []
    original = RunModels.new
    monkeypatch.setattr(RunModels, "new", lambda self, seed: built.append(seed) or original(self, seed))
    orders = []
    order_of = Trainer.epoch_generator
    def recorded(self, epoch):
        orders.append(order_of(self, epoch).initial_seed())
        return order_of(self, epoch)

    monkeypatch.setattr(Trainer, "epoch_generator", recorded)
    _, status, _ = run_experiment(config, tmp_path)
    assert status == "finished"
    assert built == [0, 0 * 1000 + 1 + 1]  # the dense init (seed), round 1's fresh init (seed * 1000 + r + 1)
    assert orders == [((0 * 1_000_003 + r) * 10_007 + 0) * 7 + 0 for r in (0, 1)]  # the old data orders


# ---------------------------------------------------------------------------- nested random masks


@pytest.mark.parametrize("schedule", ["oneshot", "iterative"])
def test_random_masks_are_nested_across_levels_as_the_official_random_mask_seed_makes_them(schedule):
    config = tiny("prune.method=random", f"prune.schedule={schedule}", "prune.rounds=4")
    model = build_model(config.model, (16,), 4, 0)
    masks = pruning.full_masks(model, prunable_names(model))
    levels = []
    for level in range(1, 5):
        draw = seeds.pruning_generator(7, level, "random")
        step = pruning.oneshot_step if schedule == "oneshot" else None
        if step:
            masks_now = step(model, masks, config.prune, draw, None, level)
        else:
            masks_now = pruning.prune_step(model, levels[-1] if levels else masks, config.prune, draw, None)
        levels.append(masks_now)
    for outer, inner in zip(levels, levels[1:]):
        assert all(bool((inner[n] <= outer[n]).all()) for n in outer)
        assert pruning.remaining(inner) < pruning.remaining(outer)


# ---------------------------------------------------------------------------- data order


def test_the_official_data_order_is_the_same_in_every_round_and_branch():
    data_config = tiny()
    same = tiny("train.data_order=same").train
    trainers = [Trainer(None, None, train, {}, Control(), round_index=r, branch=b)
                for train in (data_config.train, same) for r, b in ((0, Branch.MAIN), (3, Branch.REINIT))]
    draws = [torch.randperm(50, generator=t.epoch_generator(4)) for t in trainers]
    assert not torch.equal(draws[0], draws[1])  # per_round (default): each round and branch its own
    assert torch.equal(draws[2], draws[3])  # same: one order per epoch
    assert not torch.equal(torch.randperm(50, generator=trainers[2].epoch_generator(5)), draws[2])


# ---------------------------------------------------------------------------- random-prune start


@pytest.fixture(scope="module")
def rewind_run(run_experiment, tmp_path_factory):
    home = tmp_path_factory.mktemp("fidelity")
    config = tiny("retrain.rewind_iteration=2", "train.data_order=same")
    run_id, status, _ = run_experiment(config, home)
    assert status == "finished"
    return home, run_id


def spy_starts(monkeypatch) -> list:
    starts = []
    original = Trainer.train

    def spy(self, start_iteration=0, **kwargs):
        weights = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        starts.append((start_iteration, weights, {n: m.clone() for n, m in self.masks.items()}, kwargs))
        return original(self, start_iteration, **kwargs)

    monkeypatch.setattr(Trainer, "train", spy)
    return starts


def test_the_official_random_prune_start_has_the_weights_outside_the_ticket_at_zero(rewind_run, monkeypatch):
    home, run_id = rewind_run
    starts = spy_starts(monkeypatch)
    result = runner.invoke(app, ["branch", run_id, "random-prune", "--rounds", "2", "--home", str(home)])
    assert result.exit_code == 0, result.output
    ((iteration, weights, random_masks, _),) = starts
    rewind = torch.load(RunPaths(home, run_id).checkpoint, weights_only=True)["rewind"]
    ticket = torch.load(RunPaths(home, run_id).round_file(2), weights_only=True)["masks"]
    assert iteration == 2
    outside = 0
    for name, mask in ticket.items():
        assert torch.equal(weights[name][mask], rewind[name][mask])  # inside the ticket: the rewind weights
        assert int(torch.count_nonzero(weights[name][~mask])) == 0  # outside it: 0
        outside += int((random_masks[name] & ~mask).sum())
    assert outside > 0  # the random masks do keep weights outside the ticket: they start at 0
    assert Store(home).get_run(run_id)["rounds"][2]["random_prune"]["start"] == "official"


def test_the_dense_random_prune_start_and_wrong_starts(rewind_run, monkeypatch):
    home, run_id = rewind_run
    starts = spy_starts(monkeypatch)
    result = runner.invoke(app, ["branch", run_id, "random-prune", "--rounds", "1", "--start", "dense",
                                 "--home", str(home)])
    assert result.exit_code == 0, result.output
    rewind = torch.load(RunPaths(home, run_id).checkpoint, weights_only=True)["rewind"]
    ((_, weights, _, _),) = starts
    assert all(torch.equal(weights[name], rewind[name]) for name in weights)
    bad = runner.invoke(app, ["branch", run_id, "random-prune", "--start", "ticket", "--home", str(home)])
    assert bad.exit_code == 2 and "--start 'ticket': use official" in bad.output
    reinit = runner.invoke(app, ["branch", run_id, "reinit", "--start", "dense", "--home", str(home)])
    assert reinit.exit_code == 2 and "--start is for random-prune" in reinit.output


# ---------------------------------------------------------------------------- official re-dense


def test_the_official_redense_retrains_the_ticket_then_trains_dense_on_the_same_optimizer(rewind_run, monkeypatch):
    from sdd_tui.core.analysis.flatness import analyze_run
    from sdd_tui.core.analysis.redense_options import RedenseOptions

    home, run_id = rewind_run
    record = Store(home).run(run_id)
    starts = spy_starts(monkeypatch)
    (result,) = analyze_run(record, home, RedenseOptions(rounds=(2,), steps=3, official=True)).values()
    (sparse_start, _, sparse_masks, sparse_kwargs), (dense_start, _, dense_masks, dense_kwargs) = starts
    per_epoch, epochs = 4, 2
    assert (sparse_start, dense_start) == (2, epochs * per_epoch)  # from the rewind point; then on from T
    assert sparse_masks and not dense_masks and dense_kwargs["optimizer_state"] is not None
    assert result["procedure"] == "official" and result["epochs"] == epochs
    # with the official data order the retrained ticket is the round's own network, to the bit on a CPU
    stored = next(r for r in record.rounds if r["round"] == 2)
    assert result["sparse"]["test_acc"] == stored["test_acc"] and result["sparse"]["train_acc"] == stored["train_acc"]
    assert result["interpolation"][-1] == {"alpha": 1.0, **result["redense"]}


def test_the_official_redense_refuses_what_it_does_not_take(rewind_run):
    home, run_id = rewind_run
    both = runner.invoke(app, ["analyze", run_id, "--redense", "--rounds", "1", "--official", "--epochs", "3",
                               "--home", str(home)])
    assert both.exit_code == 2 and "leave out --epochs" in both.output
    from sdd_tui.core.analysis.flatness import analyze_run
    from sdd_tui.core.analysis.redense_options import RedenseOptions

    with pytest.raises(SddError, match="leave out --branch and --lr"):
        analyze_run(Store(home).run(run_id), home, RedenseOptions(rounds=(1,), official=True, lr=0.1))


def test_a_run_stopped_before_the_seed_tree_resumes_on_its_old_streams(run_experiment, tmp_path):
    from sdd_tui.core.events import EpochEnded
    from sdd_tui.core.runs.launch import build_run

    config = tiny("runtime.seed_scheme=1", "prune.rounds=1", "train.epochs=3", "retrain.compare_reinit=true",
                  "runtime.checkpoint_minutes=0")
    baseline_id, _, _ = run_experiment(config, tmp_path / "a")  # the old scheme, uninterrupted
    home = tmp_path / "b"

    def stop_in_round_1(event):
        if isinstance(event, EpochEnded) and (event.round, event.epoch, event.branch) == (1, 2, "main"):
            run.control.stop.set()

    run = build_run(config, home, sinks=[stop_in_round_1])
    assert run.run() == "stopped"
    store = Store(home)
    old = store.get_run(run.run_id)["config"]
    del old["runtime"]["seed_scheme"]  # as a run.json written before runtime.seed_scheme existed
    store.update_run(run.run_id, config=old)

    result = runner.invoke(app, ["resume", run.run_id, "--home", str(home)])

    assert result.exit_code == 0, result.output

    def timeless(value):
        return {k: timeless(v) for k, v in value.items() if k != "seconds"} if isinstance(value, dict) else value

    def rounds(where, run_id):
        return [timeless(r) for r in Store(where).get_run(run_id)["rounds"]]

    assert rounds(home, run.run_id) == rounds(tmp_path / "a", baseline_id)
    # what the resume would have given on the new scheme's streams (the test could tell them apart)
    new_id, _, _ = run_experiment(config.model_copy(update={"runtime": config.runtime.model_copy(
        update={"seed_scheme": 2})}), tmp_path / "c")
    assert rounds(tmp_path / "c", new_id)[1] != rounds(home, run.run_id)[1]


def test_a_level_reusing_a_dense_round_of_the_old_scheme_is_told_how(run_experiment, tmp_path):
    oneshot = ("prune.schedule=oneshot", "prune.rounds=2", "train.epochs=1")
    dense_id, status, _ = run_experiment(tiny(*oneshot, "prune.levels=[]", "runtime.seed_scheme=1"), tmp_path)
    assert status == "finished"
    with pytest.raises(SddError, match=r"runtime\.seed_scheme=1 \(here 2\).*add --set runtime\.seed_scheme=1"):
        run_experiment(tiny(*oneshot, "prune.levels=[2]", f"prune.dense_from={dense_id}"), tmp_path)
    _, status, _ = run_experiment(tiny(*oneshot, "prune.levels=[2]", f"prune.dense_from={dense_id}",
                                       "runtime.seed_scheme=1"), tmp_path)
    assert status == "finished"
