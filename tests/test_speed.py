"""The fast path: batched augmentation, the batch iterator, no host sync in the loop, exact masks."""

from __future__ import annotations

import torch

from sdd_tui.core.config import TrainConfig
from sdd_tui.core.data.datasets import Dataset, augment_batch, iterate_batches, shift_and_flip
from sdd_tui.core.engine import pruning
from sdd_tui.core.engine.training import Control, Trainer


def naive_shift_and_flip(images, dy, dx, flip, pad=4):
    """One sample at a time: pad with zeros, crop the window at (dy, dx), mirror it if asked."""
    height, width = images.shape[-2:]
    out = []
    for image, top, left, mirror in zip(images, dy.tolist(), dx.tolist(), flip.tolist()):
        window = torch.nn.functional.pad(image, (pad, pad, pad, pad))[:, top : top + height, left : left + width]
        out.append(window.flip(-1) if mirror else window)
    return torch.stack(out)


def test_shift_and_flip_equals_per_sample_crop_and_flip():
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(32, 3, 10, 12, generator=generator)
    dy = torch.randint(0, 9, (32,), generator=generator)
    dx = torch.randint(0, 9, (32,), generator=generator)
    flip = torch.rand(32, generator=generator) < 0.5
    assert torch.equal(shift_and_flip(images, dy, dx, flip), naive_shift_and_flip(images, dy, dx, flip))


def test_augment_batch_shifts_in_zeros_and_keeps_pixel_values():
    images = torch.arange(1, 1 + 64 * 2 * 8 * 8, dtype=torch.float32).view(64, 2, 8, 8)
    out = augment_batch(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    assert (out == 0).any()  # some samples moved: zeros came in from the padding
    for image, moved in zip(images, out):
        assert set(moved[moved != 0].tolist()) <= set(image.flatten().tolist())


def test_iterate_batches_visits_every_sample_once_and_repeats_per_seed():
    x = torch.arange(50, dtype=torch.float32).view(50, 1, 1, 1).expand(50, 1, 4, 4).contiguous()
    y = torch.arange(50)

    def epoch(seed, augment, start=0):
        return list(iterate_batches(x, y, 16, torch.Generator().manual_seed(seed), augment, start=start))

    batches = epoch(1, augment=True)
    assert [len(t) for _, t in batches] == [16, 16, 16, 2]
    assert sorted(torch.cat([t for _, t in batches]).tolist()) == list(range(50))
    for images, targets in batches:  # each image still belongs to its label (or is padding)
        values = images.flatten(1)
        assert ((values == targets[:, None].float()) | (values == 0)).all()
    again = epoch(1, augment=True)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again))
    assert not torch.equal(torch.cat([t for _, t in epoch(2, False)]), torch.cat([t for _, t in batches]))
    resumed = epoch(1, augment=True, start=2)
    assert torch.equal(resumed[0][1], batches[2][1]) and torch.equal(resumed[0][0], batches[2][0])


def test_mask_applier_skips_unpruned_tensors_and_zeroes_pruned_ones():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    masks = {"0.weight": torch.ones(3, 4, dtype=torch.bool),
             "1.weight": torch.tensor([[True, False, True], [False, True, True]])}
    applier = pruning.MaskApplier(model, masks)
    assert len(applier.params) == 1
    applier.weights()
    assert (model[1].weight[~masks["1.weight"]] == 0).all()
    assert (model[0].weight != 0).all()


def _tiny_dataset(samples: int) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, 1, 6, 6, generator=generator)
    y = torch.randint(3, (samples,), generator=generator)
    return Dataset("tiny", x, y, y, torch.zeros(samples, dtype=torch.bool), x[:20], y[:20], 3)


def _host_reads_during_training(monkeypatch, samples: int) -> int:
    """How often the loop reads a tensor back to Python while training 2 epochs on `samples` samples."""
    reads = []
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            reads.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    masks = {"1.weight": torch.rand(16, 36, generator=torch.Generator().manual_seed(1)) < 0.7}
    config = TrainConfig(epochs=2, batch_size=8, lr=0.05, momentum=0.9, augment=True)
    Trainer(model, _tiny_dataset(samples), config, masks, Control()).train()
    monkeypatch.undo()
    return len(reads)


def test_batch_loop_never_reads_tensors_back_to_the_host(monkeypatch):
    few_batches = _host_reads_during_training(monkeypatch, 16)
    many_batches = _host_reads_during_training(monkeypatch, 160)
    assert many_batches == few_batches  # 2 vs 20 batches per epoch: reads happen per epoch only


def test_fast_path_keeps_pruned_weights_at_exactly_zero(run_experiment, home, smoke_config):
    config = smoke_config("train.augment=true", "data.shape=[1, 6, 6]", "train.weight_decay=0.01")
    run_id, status, _ = run_experiment(config, home)
    assert status == "finished"
    checkpoint = torch.load(home / "runs" / run_id / "checkpoint.pt", weights_only=False)
    assert checkpoint["round"] == 3
    for name, mask in checkpoint["masks"].items():
        weights = checkpoint["model"][name]
        assert (weights[~mask] == 0).all()
        assert (weights[mask] != 0).any()
    assert pruning.sparsity(checkpoint["masks"]) > 0.45
