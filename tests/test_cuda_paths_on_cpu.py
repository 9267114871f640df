"""The fast path's GPU-only lines, run on the CPU: channels_last, the fused optimizer step, bf16 autocast (fp16
with loss scaling), cuDNN's benchmark switch and torch.compile (with a cheap backend: inductor's C++ build of
a CNN takes minutes here). core.engine.runtime_choices decides what a device gets; these tests hand a CPU what a GPU
gets, so that a mistake in those lines fails here rather than on a user's first GPU run. Whole runs take the
GPU's branches through the `as_on_a_gpu` fixture (tests/conftest.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from sdd_tui.core.config import ModelConfig, TrainConfig, resolve_config
from sdd_tui.core.data.datasets import Dataset
from sdd_tui.core.engine import pruning
from sdd_tui.core.engine.checkpoint import read_round_file
from sdd_tui.core.engine.models import build_model, prunable_names
from sdd_tui.core.engine.run_state import optimizer_copy
from sdd_tui.core.engine.runtime_choices import RuntimeChoices
from sdd_tui.core.engine.training import Control, Trainer, TrainSchedule, autocast_for, compile_model, snapshot
from sdd_tui.core.events import EpochEnded, Message, RoundEnded
from sdd_tui.core.paths import RunPaths

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
CHEAP_BACKEND = "aot_eager"  # dynamo's graph capture and AOTAutograd's backward graph, no C++ build


def gpu_choices(bf16: bool = True) -> RuntimeChoices:
    """What the fast path turns on for a CUDA card (with or without bf16), compiling with the cheap backend."""
    chosen = RuntimeChoices.for_device(CUDA, fast=True, amp=True, bf16=bf16)
    return dataclasses.replace(chosen, compile_backend=CHEAP_BACKEND)


def images(count: int = 64, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(count, 3, 8, 8, generator=generator)
    y = torch.randint(0, 4, (count,), generator=generator)
    return Dataset("tiny-images", x, y, y.clone(), torch.zeros(count, dtype=torch.bool), x[:32].clone(), y[:32].clone(),
                   4)


def tiny_resnet(choices: RuntimeChoices) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """ResNet-18 at a sixteenth of its width, laid out as `choices` say, with round 1's masks (20% pruned)."""
    model = build_model(ModelConfig(name="resnet18", width=0.0625), (3, 8, 8), 4, seed=0)
    if choices.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, round_one_masks(model, prunable_names(model))


def small_cnn(choices: RuntimeChoices) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A convolution, BatchNorm and a linear layer: what compiling a CNN meets, in a graph traced quickly."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 4))
    if choices.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, round_one_masks(model, ["0.weight", "5.weight"])


def round_one_masks(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """20% of `names`' weights pruned at random, as round 1 prunes."""
    masks = pruning.full_masks(model, names)
    return pruning.prune_masks(pruning.random_scores(masks, torch.Generator().manual_seed(0)), masks, 0.2)


def pruned_nonzero(model: nn.Module, masks: dict[str, torch.Tensor]) -> int:
    params = dict(model.named_parameters())
    return sum(int((params[name][~mask] != 0).sum()) for name, mask in masks.items())


# ---------------------------------------------------------------------------- the decision


def test_a_gpu_gets_every_fast_path_choice_and_a_cpu_or_the_slow_path_none():
    on_gpu = RuntimeChoices.for_device(CUDA, fast=True, amp=True, bf16=True)
    assert on_gpu == RuntimeChoices(channels_last=True, fused_optimizer=True, cudnn_benchmark=True,
                                    amp_dtype=torch.bfloat16, compile_backend="inductor")
    assert not on_gpu.grad_scaling  # bf16 has fp32's range
    no_bf16 = RuntimeChoices.for_device(torch.device("cuda:1"), fast=True, amp=True, bf16=False)
    assert no_bf16.amp_dtype == torch.float16 and no_bf16.grad_scaling
    assert not no_bf16.fused_optimizer  # fused SGD corrupts its momentum when loss scaling skips the first step
    fp32 = RuntimeChoices.for_device(CUDA, fast=True, amp=False, bf16=True)
    assert fp32.amp_dtype is None and fp32.fused_optimizer and fp32.channels_last and fp32.autocast(CUDA) is None
    assert RuntimeChoices.for_device(CUDA, fast=False, amp=True, bf16=True) == RuntimeChoices()
    assert RuntimeChoices.for_device(CPU, fast=True, amp=True) == RuntimeChoices()
    assert autocast_for(CPU, True) is None
    trainer = Trainer(nn.Linear(3, 2), images(), TrainConfig(), {}, Control(), amp=True)
    assert trainer.runtime == RuntimeChoices() and trainer.autocast() is None  # a CPU run trains as before
    assert dataclasses.replace(trainer, choices=gpu_choices()).amp_dtype() == torch.bfloat16


# ---------------------------------------------------------------------------- a round's training


class Spy:
    """Records what training did: the optimizer it stepped, the dtype the network computed in, the scalers."""

    def __init__(self, model: nn.Module, monkeypatch):
        self.optimizers, self.dtypes, self.scalers = [], set(), []
        model.fc.register_forward_hook(lambda module, args, out: self.dtypes.add(out.dtype))
        scaler_class = torch.amp.GradScaler
        scalers = self.scalers

        class RecordedScaler(scaler_class):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                scalers.append(self)

        monkeypatch.setattr(torch.amp, "GradScaler", RecordedScaler)

    def on_epoch_end(self, epoch, optimizer, result) -> None:
        self.optimizers.append(optimizer)


@pytest.mark.parametrize("bf16, optimizer", [(True, "sgd"), (False, "sgd"), (True, "adam")],
                         ids=["bf16-sgd", "fp16-loss-scaling-sgd", "bf16-adam"])
def test_a_round_trains_on_a_gpus_choices(bf16, optimizer, monkeypatch, one_thread):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    choices = gpu_choices(bf16)
    model, masks = tiny_resnet(choices)
    spy = Spy(model, monkeypatch)
    config = TrainConfig(epochs=2, batch_size=16, eval_batch_size=32, lr=0.05, momentum=0.9, augment=True,
                         optimizer=optimizer)
    trainer = Trainer(model, images(), config, masks, Control(), amp=True, choices=choices,
                      on_epoch_end=spy.on_epoch_end)
    result = trainer.train()

    assert len(result.epochs) == 2 and all(torch.isfinite(torch.tensor(e.train_loss)) for e in result.epochs)
    optimizer_used = spy.optimizers[-1]
    assert bool(optimizer_used.defaults["fused"]) is choices.fused_optimizer and optimizer_used.state  # it stepped
    assert spy.dtypes == {torch.bfloat16 if bf16 else torch.float16}  # training and evaluation autocast
    assert torch.backends.cudnn.benchmark is True
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)  # the step kept the layout
    assert pruned_nonzero(model, masks) == 0
    if bf16:
        assert spy.scalers == []
    else:  # fp16: the loss was scaled on this device, the scaler skipped the overflowing steps, training went on
        assert len(spy.scalers) == 1 and spy.scalers[0]._device == "cpu"
        assert spy.scalers[0].get_scale() < 2.0**16  # torch's initial scale: at least one step overflowed
        assert not choices.fused_optimizer


def test_a_fused_steps_optimizer_state_resumes_a_round(one_thread, monkeypatch):
    """A checkpoint taken mid-round holds the fused optimizer's state; resuming loads it into a new one."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    choices = gpu_choices()
    config = TrainConfig(epochs=2, batch_size=16, eval_batch_size=32, lr=0.05, momentum=0.9)
    saved = {}

    def keep_first_epoch(epoch, optimizer, result):
        if epoch == 0:
            saved.update(optimizer=optimizer_copy(optimizer), model=snapshot(model))  # as a checkpoint keeps it

    model, masks = tiny_resnet(choices)
    Trainer(model, images(), config, masks, Control(), amp=True, choices=choices,
            on_epoch_end=keep_first_epoch).train()
    again, _ = tiny_resnet(choices)
    again.load_state_dict(saved["model"])
    resumed = Trainer(again, images(), config, masks, Control(), amp=True, choices=choices).train(
        **vars(TrainSchedule(start_iteration=4, optimizer_state=saved["optimizer"])))
    assert [e.epoch for e in resumed.epochs] == [1]
    assert pruned_nonzero(again, masks) == 0
    for name, value in model.state_dict().items():  # the same second epoch as the run that never stopped
        assert torch.allclose(again.state_dict()[name].float(), value.float(), atol=1e-5), name


# ---------------------------------------------------------------------------- torch.compile


@pytest.mark.slow
def test_compiling_keeps_the_weights_and_the_compiled_network_trains_with_exact_masks(one_thread, monkeypatch):
    import torch._dynamo

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    torch._dynamo.reset()
    choices = gpu_choices()
    model, masks = small_cnn(choices)
    data = images()
    before = snapshot(model)
    compiled, seconds = compile_model(model, data.x_train[:16], data.y_train[:16], choices.autocast(CPU),
                                      choices.compile_backend)
    assert seconds > 0 and compiled is not model
    for name, value in model.state_dict().items():  # the warm-up step and BatchNorm statistics were undone
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in model.parameters())
    config = TrainConfig(epochs=1, batch_size=16, eval_batch_size=32, lr=0.05, momentum=0.9)
    result = Trainer(model, data, config, masks, Control(), amp=True, choices=choices, forward=compiled).train()
    assert torch.isfinite(torch.tensor(result.epochs[0].test_loss))
    assert not torch.equal(model[0].weight, before["0.weight"])  # the compiled forward trained the model
    assert pruned_nonzero(model, masks) == 0


# ---------------------------------------------------------------------------- whole runs


@pytest.mark.slow
def test_a_compiled_run_on_a_gpus_choices_finishes_with_exact_masks(as_on_a_gpu, run_experiment, home):
    import torch._dynamo

    torch._dynamo.reset()
    config = resolve_config("resnet18-noise20", overrides=[
        "data.name='synthetic'", "data.shape=[3, 8, 8]", "data.num_classes=4", "data.download=false",
        "data.synthetic_train=64", "data.synthetic_test=32", "model.width=0.0625", "train.epochs=1",
        "train.milestones=[]", "train.batch_size=32", "train.eval_batch_size=64", "prune.rounds=1",
        "retrain.rewind_iteration=1", "retrain.compare_reinit=true", "runtime.device='cpu'", "runtime.threads=1",
        "runtime.compile=true", "runtime.checkpoint_minutes=0"])
    run_id, status, events = run_experiment(config, home)
    assert status == "finished"
    texts = [e.text for e in events if isinstance(e, Message)]
    assert sum("compiled in" in text for text in texts) == 2, texts  # the run's model and the reinit branch's
    assert not any("torch.compile failed" in text for text in texts)
    assert {e.branch for e in events if isinstance(e, EpochEnded)} == {"main", "reinit"}
    rounds = [e.result for e in events if isinstance(e, RoundEnded)]
    assert [r["round"] for r in rounds] == [0, 1] and rounds[1]["sparsity"] == pytest.approx(0.2, abs=1e-3)
    saved = torch.load(home / "runs" / run_id / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert saved["model"]["conv1.weight"].is_contiguous(memory_format=torch.channels_last)
    for name, mask in saved["masks"].items():
        assert not saved["model"][name][~mask].any(), name


def test_a_cohort_trains_under_autocast_on_a_gpus_choices(as_on_a_gpu, home, run_experiment, monkeypatch):
    from sdd_tui.core.engine.cohort_model import PackedMLP
    from sdd_tui.core.runs.cohort import Cohort
    from sdd_tui.core.runs.launch import build_run

    def written_out_step(*args):
        raise AssertionError("the fp32 step ran: the cohort did not autocast")

    monkeypatch.setattr(PackedMLP, "train_step", written_out_step)
    configs = [resolve_config("smoke", overrides=["prune.rounds=1", f"runtime.seed={seed}"]) for seed in (0, 1)]
    said: list[str] = []
    cohort = Cohort(say=said.append)
    handles = [build_run(config, home, branch_trainer=cohort.branch_trainer) for config in configs]
    statuses = cohort.run(handles)
    assert [statuses[h.run_id] for h in handles] == ["finished", "finished"]
    assert sum("2 members packed" in line for line in said) == 2, said  # the dense round and round 1
    for config, handle in zip(configs, handles):
        alone_id, status, _ = run_experiment(config, home)
        packed, alone = (read_round_file(RunPaths(home, run_id).round_file(1), CPU)
                         for run_id in (handle.run_id, alone_id))
        # bf16 rounds differently packed (one batched matmul) and alone: close, not bit for bit
        assert status == "finished" and abs(packed["result"]["test_acc"] - alone["result"]["test_acc"]) <= 0.05
        for name, mask in packed["masks"].items():
            assert not packed["model"][name][~mask].any(), name
