"""Packed cohorts: which runs pack, the packed model's arithmetic, and cohorts of real runs against the same
runs alone (masks, accuracies, per-member pruning, a member that diverges, stops and resumes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from sdd_tui.core.config import TrainConfig, resolve_config
from sdd_tui.core.engine.checkpoint import read_checkpoint, read_round_file
from sdd_tui.core.engine.cohort_model import PackedMasks, PackedMLP, PackedSGD
from sdd_tui.core.engine.cohort_plan import pack_key, plan_cohorts, unpackable_reason
from sdd_tui.core.engine.cohort_training import shared_sources, stacked_sources
from sdd_tui.core.engine.models import MLP
from sdd_tui.core.engine.training import make_optimizer
from sdd_tui.core.events import EpochEnded, RunEnded
from sdd_tui.core.paths import RunPaths
from sdd_tui.core.runs.cohort import Cohort
from sdd_tui.core.runs.launch import build_run

CPU = torch.device("cpu")


def digits(seed: int, *overrides: str):
    """digits-noise40 shrunk to seconds: two rounds (dense + one pruned) of 3 epochs, every weight prunable."""
    return resolve_config("digits-noise40", overrides=["prune.rounds=1", "train.epochs=3", f"runtime.seed={seed}",
                                                        "runtime.checkpoint_minutes=0", *overrides])


# ---------------------------------------------------------------------------- which runs pack


def test_runs_that_differ_in_seed_noise_pruning_and_optimiser_settings_pack_together():
    base = digits(0)
    same = [digits(1), digits(2, "noise.rate=0.2", "noise.kind='pairflip'"), digits(3, "prune.scope='layer'"),
            digits(4, "prune.method='random'", "prune.fraction=0.5"), digits(5, "train.lr=0.1", "train.momentum=0.5"),
            digits(6, "train.weight_decay=0.001", "train.milestones=[2]"), digits(7, "retrain.mode='scratch'"),
            digits(8, "retrain.mode='finetune'"), digits(9, "retrain.mode='lr_rewind'")]
    assert all(pack_key(config) == pack_key(base) for config in same)


def test_runs_that_cannot_pack_say_why():
    reasons = {override: unpackable_reason(resolve_config("smoke", overrides=[override]))
               for override in ("model.name='resnet18'", "train.optimizer='adam'", "runtime.fast=false",
                                "runtime.compile=true", "retrain.mode='reinit'", "retrain.compare_reinit=true")}
    assert "only the MLP family" in reasons["model.name='resnet18'"]
    assert "SGD only" in reasons["train.optimizer='adam'"]
    assert "standard recipe" in reasons["runtime.fast=false"]
    assert "compiled" in reasons["runtime.compile=true"]
    assert "reinit branch" in reasons["retrain.mode='reinit'"]
    assert reasons["retrain.compare_reinit=true"] == reasons["retrain.mode='reinit'"]
    assert unpackable_reason(resolve_config("smoke")) is None


def test_a_schedule_of_its_own_keeps_a_run_out_of_the_cohort():
    base = digits(0)
    for override in ("train.epochs=4", "train.batch_size=32", "prune.rounds=2", "model.hidden=[30]",
                     "retrain.rewind_iteration=5", "data.train_size=600", "runtime.threads=2",
                     "prune.schedule='oneshot'"):
        assert pack_key(digits(1, override)) != pack_key(base), override
    # one-shot runs of other levels train other rounds: a cohort trains one round at a time
    oneshot = "prune.schedule='oneshot'"
    assert pack_key(digits(1, oneshot, "prune.levels=[1]")) != pack_key(digits(2, oneshot))
    assert pack_key(digits(1, oneshot, "prune.levels=[1]")) == pack_key(digits(2, oneshot, "prune.levels=[1]"))
    # lr_rewind restarts the schedule at rewind_iteration, finetune at 0: with t > 0 they train apart
    assert pack_key(digits(1, "retrain.mode='lr_rewind'", "retrain.rewind_iteration=5")) == pack_key(
        digits(2, "retrain.rewind_iteration=5"))
    assert pack_key(digits(1, "retrain.mode='finetune'", "retrain.rewind_iteration=5")) != pack_key(
        digits(2, "retrain.rewind_iteration=5"))


def _members(configs):
    return [{"run_id": f"r{i}", "name": f"m{i}"} for i in range(len(configs))]


def test_plan_packs_by_key_splits_for_slots_and_size_and_says_why_others_run_alone():
    configs = [digits(s) for s in range(6)] + [digits(6, "train.epochs=4"), digits(7, "retrain.mode='reinit'")]
    members = _members(configs)
    plan = plan_cohorts(members, configs)
    assert [[m["run_id"] for m in cohort] for cohort in plan.cohorts] == [[f"r{i}" for i in range(6)]]
    alone = {member["run_id"]: reason for member, reason in plan.alone}
    assert alone["r6"] == "no other member shares its train.epochs"
    assert "reinit branch" in alone["r7"]
    assert [[m["run_id"] for m in job] for job in plan.jobs(members)] == [[f"r{i}" for i in range(6)], ["r6"], ["r7"]]
    lines = plan.lines()
    assert lines[0] == "packed: 1 cohort(s) (6 members), 2 member(s) alone"
    assert any(line.startswith("  alone: r6  m6: no other member shares its train.epochs") for line in lines)

    two_gpus = plan_cohorts(members[:6], configs[:6], slots=2)
    assert [len(cohort) for cohort in two_gpus.cohorts] == [3, 3]
    capped = plan_cohorts(members[:6], configs[:6], pack_size=4)
    assert [len(cohort) for cohort in capped.cohorts] == [3, 3]
    singles = plan_cohorts(members[:3], configs[:3], pack_size=1)
    assert singles.cohorts == [] and len(singles.alone) == 3


# ---------------------------------------------------------------------------- the packed model's arithmetic


def _mlps(count: int, seed: int = 0) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [MLP(12, [20, 16], 5) for _ in range(count)]


def test_packed_gradients_are_each_members_own_bit_for_bit(one_thread):
    modules, copies = _mlps(3), _mlps(3)
    for copy, module in zip(copies, modules):
        copy.load_state_dict(module.state_dict())
    net = PackedMLP(modules)
    inputs, targets = torch.randn(3, 7, 12), torch.randint(0, 5, (3, 7))
    losses = nn.functional.cross_entropy(net(inputs).flatten(0, 1), targets.flatten(), reduction="none")
    losses.view(3, 7).mean(1).sum().backward()
    for index, copy in enumerate(copies):
        nn.functional.cross_entropy(copy(inputs[index]), targets[index]).backward()
        for name, param in copy.named_parameters():
            assert torch.equal(net.params[name].grad[index], param.grad), name


def test_members_modules_view_the_packed_weights():
    modules = _mlps(2)
    net = PackedMLP(modules)
    with torch.no_grad():
        net.params["output.bias"][1] += 1.0
    assert torch.equal(modules[1].output.bias, net.params["output.bias"][1])
    modules[0].load_state_dict({k: torch.zeros_like(v) for k, v in modules[0].state_dict().items()})
    assert float(net.params["hidden.0.weight"][0].detach().abs().sum()) == 0.0
    assert float(net.params["hidden.0.weight"][1].detach().abs().sum()) > 0.0


def test_packed_sgd_steps_each_member_as_torch_sgd_with_its_own_settings(one_thread):
    settings = [dict(lr=0.05, momentum=0.9, weight_decay=0.0), dict(lr=0.2, momentum=0.0, weight_decay=1e-3),
                dict(lr=0.01, momentum=0.5, weight_decay=1e-2)]
    configs = [TrainConfig(**s) for s in settings]
    modules, copies = _mlps(3), _mlps(3)
    for copy, module in zip(copies, modules):
        copy.load_state_dict(module.state_dict())
    net = PackedMLP(modules)
    packed = PackedSGD(net, configs)
    packed.set_lrs([c.lr for c in configs])
    alone = [make_optimizer(copy, config, config.lr) for copy, config in zip(copies, configs)]
    for step in range(3):
        inputs, targets = torch.randn(3, 7, 12), torch.randint(0, 5, (3, 7))
        net.zero_grad()
        nn.functional.cross_entropy(net(inputs).flatten(0, 1), targets.flatten(), reduction="none").view(
            3, 7).mean(1).sum().backward()
        packed.step()
        for index, (copy, optimizer) in enumerate(zip(copies, alone)):
            optimizer.zero_grad()
            nn.functional.cross_entropy(copy(inputs[index]), targets[index]).backward()
            optimizer.step()
    for index, copy in enumerate(copies):
        for name, param in copy.named_parameters():
            assert torch.equal(modules[index].get_parameter(name), param), (index, name)
    # each member's optimizer state reads as torch's own, and carries on there
    for index, optimizer in enumerate(alone):
        state = packed.member_optimizer(index).state_dict()
        expected = optimizer.state_dict()
        assert state["param_groups"] == expected["param_groups"]  # every setting, built without torch.optim
        assert state["state"].keys() == expected["state"].keys()
        for key, entry in expected["state"].items():
            assert torch.equal(state["state"][key]["momentum_buffer"], entry["momentum_buffer"])
    fresh = PackedSGD(PackedMLP(_mlps(3)), configs)
    fresh.buffers[0][1].fill_(1.0)
    fresh.load_member(0, alone[0].state_dict())
    fresh.load_member(1, alone[1].state_dict())  # momentum 0: torch keeps no buffer, the member's is zero
    for position, param in enumerate(copies[0].parameters()):
        assert torch.equal(fresh.buffers[position][0], alone[0].state[param]["momentum_buffer"])
    assert not fresh.buffers[0][1].any()
    with pytest.raises(ValueError, match="6 in one"):
        fresh.load_member(2, {"state": {}, "param_groups": [{"params": [0, 1]}]})


def test_a_packed_step_written_out_gives_autograds_gradients_bit_for_bit(one_thread):
    # B=7: 1/B is inexact, as in an epoch's last, shorter batch
    for count, batch in ((3, 7), (2, 64)):
        modules = _mlps(count, seed=count)
        net = PackedMLP(modules)
        inputs, targets = torch.randn(count, batch, 12), torch.randint(0, 5, (count, batch))
        logits = net(inputs)
        losses = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(
            count, batch).mean(1)
        losses.sum().backward()
        expected = {name: tensor.grad.clone() for name, tensor in net.params.items()}
        net.zero_grad()
        written_losses, written_logits = net.train_step(inputs, targets)
        assert torch.equal(written_losses, losses.detach()) and torch.equal(written_logits, logits.detach())
        for name, tensor in net.params.items():
            assert torch.equal(tensor.grad, expected[name]), (count, batch, name)


def test_equal_data_are_held_once_and_a_later_round_finds_them_stacked():
    first, other = torch.randn(50, 8), torch.randn(50, 8)
    copy = first.clone()
    distinct, index = shared_sources([first, copy, other, first])
    assert len(distinct) == 2 and index.tolist() == [0, 0, 1, 0]
    stacked = stacked_sources(distinct)
    rows = [stacked[which] for which in index.tolist()]  # what the members' datasets then hold
    again, same_index = shared_sources(rows)
    assert same_index.tolist() == [0, 0, 1, 0] and stacked_sources(again) is stacked  # no copy the next round
    assert stacked_sources([first]).data_ptr() == first.data_ptr()


def test_masks_keep_pruned_weights_exactly_zero():
    modules = _mlps(2)
    masks = [{name: torch.rand_like(p) > 0.5 for name, p in m.named_parameters() if name.endswith("weight")}
             for m in modules]
    net = PackedMLP(modules)
    PackedMasks(net, masks).apply()
    for module, member_masks in zip(modules, masks):
        for name, mask in member_masks.items():
            assert not module.get_parameter(name)[~mask].any()


# ---------------------------------------------------------------------------- real runs, packed and alone


def _run_cohort(configs, home, events=None, resume=False, run_ids=None):
    """Run `configs` as one cohort; (run ids, statuses). `events`: a list per member to collect its events."""
    cohort = Cohort()
    events = events or [[] for _ in configs]
    run_ids = run_ids or [None] * len(configs)
    handles = [build_run(config, home, sinks=[kept.append], branch_trainer=cohort.branch_trainer, resume=resume,
                         run_id=run_id) for config, kept, run_id in zip(configs, events, run_ids)]
    statuses = cohort.run(handles)
    return [h.run_id for h in handles], [statuses[h.run_id] for h in handles]


def _round_file(home, run_id, round_index):
    return read_round_file(RunPaths(home, run_id).round_file(round_index), CPU)


def _mask_difference(a, b) -> float:
    differing = sum(int((a[name] != b[name]).sum()) for name in a)
    return differing / sum(mask.numel() for mask in a.values())


@pytest.mark.slow
def test_packed_members_match_the_same_runs_alone_and_prune_within_themselves(home, run_experiment):
    # lr 0.05 against 0.5: weights of very different sizes; a threshold across members would prune unevenly
    configs = [digits(0), digits(1, "train.lr=0.5", "train.momentum=0.0", "noise.rate=0.2"),
               digits(2, "prune.scope='layer'", "prune.method='random'")]
    packed_ids, statuses = _run_cohort(configs, home)
    assert statuses == ["finished"] * 3
    for config, packed_id in zip(configs, packed_ids):
        alone_id, status, _ = run_experiment(config, home)
        assert status == "finished"
        packed, alone = _round_file(home, packed_id, 1), _round_file(home, alone_id, 1)
        assert _mask_difference(packed["masks"], alone["masks"]) <= 0.001
        assert abs(packed["result"]["test_acc"] - alone["result"]["test_acc"]) <= 0.005
        # one member's pruning: exactly 20% of its own weights (layer scope: of each of its tensors)
        remaining = sum(int(m.sum()) for m in packed["masks"].values())
        assert remaining == packed["result"]["remaining"] and packed["result"]["sparsity"] == pytest.approx(0.2, abs=1e-4)
        if config.prune.scope == "layer":
            assert all(float(m.float().mean()) == pytest.approx(0.8, abs=1e-3) for m in packed["masks"].values())
        for name, mask in packed["masks"].items():
            assert not packed["model"][name][~mask].any()


def test_a_member_that_diverges_fails_alone_and_the_others_go_on(home, run_experiment):
    two_epochs = "train.epochs=2"  # enough for lr 10 to diverge (one is not)
    configs = [digits(0, two_epochs), digits(1, "train.lr=10.0", "train.momentum=0.99", two_epochs),
               digits(2, two_epochs)]
    events = [[], [], []]
    run_ids, statuses = _run_cohort(configs, home, events)
    assert statuses == ["finished", "failed", "finished"]
    ended = next(e for e in events[1] if isinstance(e, RunEnded))
    assert ended.status == "failed" and "loss became" in ended.error and "lower train.lr" in ended.error
    alone_id, _, _ = run_experiment(configs[2], home)
    assert _round_file(home, run_ids[2], 1)["result"]["test_acc"] == _round_file(home, alone_id, 1)["result"]["test_acc"]


class StopAt:
    """A sink that stops its run after a given epoch of a given round."""

    def __init__(self, round_index: int, epoch: int):
        self.round, self.epoch, self.control, self.events = round_index, epoch, None, []

    def __call__(self, event):
        self.events.append(event)
        if isinstance(event, EpochEnded) and (event.round, event.epoch) == (self.round, self.epoch):
            self.control.stop.set()


@pytest.mark.slow
def test_a_stopped_cohort_resumes_from_its_checkpoints_at_different_points(home, run_experiment):
    configs = [digits(0, "prune.rounds=2"), digits(1, "prune.rounds=2")]
    stops = [StopAt(0, 1), StopAt(1, 2)]
    cohort = Cohort()
    handles = [build_run(c, home, sinks=[s], branch_trainer=cohort.branch_trainer) for c, s in zip(configs, stops)]
    for handle, stop in zip(handles, stops):
        stop.control = handle.control
    statuses = cohort.run(handles)
    assert [statuses[h.run_id] for h in handles] == ["stopped", "stopped"]
    run_ids = [h.run_id for h in handles]
    saved = [read_checkpoint(RunPaths(home, run_id).checkpoint, CPU, run_id) for run_id in run_ids]
    assert [(s.partial.round, s.partial.next_epoch) for s in saved] == [(0, 1), (1, 2)]

    again, statuses = _run_cohort(configs, home, resume=True, run_ids=run_ids)
    assert statuses == ["finished", "finished"]
    for config, run_id in zip(configs, run_ids):
        alone_id, _, _ = run_experiment(config, home)
        for round_index in range(3):
            resumed, alone = _round_file(home, run_id, round_index), _round_file(home, alone_id, round_index)
            assert resumed["result"]["test_acc"] == alone["result"]["test_acc"]
            assert all(torch.equal(resumed["masks"][n], alone["masks"][n]) for n in alone["masks"])


def test_a_member_stopped_in_a_cohort_resumes_alone_as_an_ordinary_run(home, run_experiment):
    configs = [digits(0, "train.epochs=2"), digits(1, "train.epochs=2")]  # stopped after epoch 1 of round 1
    stop = StopAt(1, 1)
    cohort = Cohort()
    handles = [build_run(configs[0], home, sinks=[stop], branch_trainer=cohort.branch_trainer),
               build_run(configs[1], home, branch_trainer=cohort.branch_trainer)]
    stop.control = handles[0].control
    statuses = cohort.run(handles)
    assert [statuses[h.run_id] for h in handles] == ["stopped", "finished"]
    run_id, status, events = run_experiment(configs[0], home, run_id=handles[0].run_id, resume=True)
    assert status == "finished"
    assert any("resuming round 1 at epoch 2" in getattr(e, "text", "") for e in events)
    alone_id, _, _ = run_experiment(configs[0], home)
    assert _round_file(home, run_id, 1)["result"]["test_acc"] == _round_file(home, alone_id, 1)["result"]["test_acc"]
    lines = [json.loads(line) for line in RunPaths(home, run_id).events.read_text().splitlines()]
    assert [e["status"] for e in lines if e["type"] == "RunEnded"] == ["stopped", "finished"]


COHORT_PROBE = """
import sys
from sdd_tui.core.runs.cohort import Cohort
from sdd_tui.core.config import resolve_config
from sdd_tui.core.runs.launch import build_run
configs = [resolve_config("digits-noise40", overrides=["prune.rounds=1", "train.epochs=1", f"runtime.seed={seed}",
                                                       "runtime.checkpoint_every=1"]) for seed in (0, 1)]
cohort = Cohort()
statuses = cohort.run([build_run(c, sys.argv[1], branch_trainer=cohort.branch_trainer) for c in configs])
print(sorted(statuses.values()), "torch._dynamo" in sys.modules)
"""


@pytest.mark.slow
def test_a_cohort_never_imports_torch_dynamo(home):
    """torch.optim's first use imports torch._dynamo (seconds): a cohort steps, checkpoints and resumes its
    members' SGD without torch.optim, so its process never pays that."""
    shown = subprocess.run([sys.executable, "-P", "-c", COHORT_PROBE, str(home)], capture_output=True, text=True,
                           cwd=home.parent)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.strip().splitlines()[-1] == "['finished', 'finished'] False", shown.stdout
