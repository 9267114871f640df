import math

import pytest
import torch

from sdd_tui.core.config import ModelConfig, TrainConfig
from sdd_tui.core.data.datasets import Dataset
from sdd_tui.core.engine import pruning
from sdd_tui.core.engine.models import build_model, prunable_names
from sdd_tui.core.engine.training import Control, Trainer


def tiny_model(seed=0):
    return build_model(ModelConfig(name="mlp", hidden=[40, 30]), (16,), 4, seed)


def expected_remaining(total, fraction, rounds):
    alive = total
    for _ in range(rounds):
        alive -= math.ceil(fraction * alive - 1e-9)
    return alive


@pytest.mark.parametrize("method", ["magnitude", "random", "gradient"])
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_exact_counts_every_round(method, scope):
    model = tiny_model()
    masks = pruning.full_masks(model, prunable_names(model, "all"))
    inputs, targets = torch.randn(32, 16), torch.randint(4, (32,))
    generator = torch.Generator().manual_seed(0)
    for round_index in range(1, 16):
        before = {n: int(m.sum()) for n, m in masks.items()}
        if method == "magnitude":
            scores = pruning.magnitude_scores(model, masks)
        elif method == "random":
            scores = pruning.random_scores(masks, generator)
        else:
            scores = pruning.gradient_scores(model, masks, inputs, targets)
        new = pruning.prune_masks(scores, masks, 0.2, scope)
        if scope == "global":
            alive = sum(before.values())
            assert pruning.remaining(new) == alive - math.ceil(0.2 * alive)
        else:
            for name, mask in new.items():
                assert int(mask.sum()) == before[name] - math.ceil(0.2 * before[name])
        assert all((~masks[n] & new[n]).sum() == 0 for n in masks)  # nothing revived
        masks = new
        pruning.MaskApplier(model, masks).weights()
    if scope == "global":
        assert pruning.remaining(masks) == expected_remaining(pruning.total(masks), 0.2, 15)


def test_ties_never_change_the_count():
    masks = {"w": torch.ones(10, 10, dtype=torch.bool)}
    scores = {"w": torch.ones(10, 10)}  # every score equal
    new = pruning.prune_masks(scores, masks, 0.2)
    assert pruning.remaining(new) == 80


def test_magnitude_removes_the_smallest_alive_weights():
    masks = {"a": torch.tensor([True, True, False, True]), "b": torch.tensor([True, True])}
    scores = {"a": torch.tensor([0.5, 0.1, 0.0, 0.9]), "b": torch.tensor([0.2, 0.3])}
    new = pruning.prune_masks(scores, masks, 0.4)  # ceil(0.4 * 5) = 2
    assert new["a"].tolist() == [True, False, False, True]
    assert new["b"].tolist() == [False, True]


def test_sparsity_follows_the_geometric_schedule():
    masks = {"w": torch.ones(1000, 100, dtype=torch.bool)}
    generator = torch.Generator().manual_seed(0)
    for round_index in range(1, 31):
        masks = pruning.prune_masks(pruning.random_scores(masks, generator), masks, 0.2)
        assert pruning.sparsity(masks) == pytest.approx(pruning.expected_sparsity(0.2, round_index), abs=1e-4)


def test_masked_weights_stay_zero_with_momentum_and_weight_decay():
    model = tiny_model()
    masks = pruning.full_masks(model, prunable_names(model, "all"))
    masks = pruning.prune_masks(pruning.random_scores(masks, torch.Generator().manual_seed(1)), masks, 0.7)
    x, y = torch.randn(128, 16), torch.randint(4, (128,))
    data = Dataset("synthetic", x, y, y, torch.zeros(128, dtype=torch.bool), x[:32], y[:32], 4)
    config = TrainConfig(epochs=3, batch_size=16, lr=0.1, momentum=0.9, weight_decay=0.01)
    Trainer(model, data, config, masks, Control()).train()
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert (params[name][~mask] == 0).all()
        assert (params[name][mask] != 0).any()
    biases = [p for n, p in params.items() if n.endswith("bias")]
    assert all((b != 0).any() for b in biases)  # never pruned
