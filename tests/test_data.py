import numpy as np
import pytest
import torch

from sdd_tui.core.config import DataConfig, NoiseConfig
from sdd_tui.core.data.datasets import (
    CIFAR10_ASYMMETRIC,
    DIGITS_TRAIN_SIZE,
    apply_label_noise,
    asymmetric_map,
    augment_batch,
    iterate_batches,
    load_clean,
    load_dataset,
    noise_report,
    relabelled_count,
)
from sdd_tui.core.errors import SddError


def labels(n=1000, classes=10, seed=0):
    return torch.randint(classes, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.8])
def test_symmetric_noise_realises_the_rate_and_always_changes_class(rate):
    clean = labels()
    noisy, mask = apply_label_noise(clean, "symmetric", rate, 10, seed=3)
    assert int(mask.sum()) == round(rate * len(clean))
    assert torch.equal(mask, noisy != clean)
    assert ((noisy >= 0) & (noisy < 10)).all()


def test_symmetric_noise_targets_are_spread_over_other_classes():
    clean = torch.zeros(9000, dtype=torch.long)
    noisy, _ = apply_label_noise(clean, "symmetric", 1.0, 10, seed=0)
    counts = torch.bincount(noisy, minlength=10)
    assert counts[0] == 0
    assert counts[1:].min() > 800 and counts[1:].max() < 1200


def test_random_noise_relabels_ceil_rate_n_from_all_classes_so_fewer_change():
    clean = labels(10_000)
    noisy, mask = apply_label_noise(clean, "random", 0.4, 10, seed=3)
    assert torch.equal(mask, noisy != clean)
    changed = int(mask.sum())
    assert 3400 < changed < 3800  # 4,000 relabelled, about 1 in 10 of them keeps its class: ~3,600
    # the relabelled samples are the first ceil(rate * N) of the seed's permutation
    chosen = torch.randperm(10_000, generator=torch.Generator().manual_seed(3))[:4000]
    assert not mask[~torch.isin(torch.arange(10_000), chosen)].any()
    kept = (noisy[chosen] == clean[chosen]).sum()
    assert int(kept) == 4000 - changed and kept > 300  # the true class is among the draws
    assert relabelled_count(1000, 0.2) == 200 and relabelled_count(999, 0.2) == 200  # ceil, not round


def test_random_noise_targets_cover_every_class_the_true_one_included():
    clean = torch.zeros(9000, dtype=torch.long)
    noisy, mask = apply_label_noise(clean, "random", 1.0, 10, seed=0)
    counts = torch.bincount(noisy, minlength=10)
    assert counts.min() > 800 and counts.max() < 1000
    assert int(mask.sum()) == 9000 - int(counts[0])


@pytest.mark.parametrize("kind", ["symmetric", "random"])
def test_the_noise_report_says_the_realised_rate(kind, tmp_path):
    data = DataConfig(name="synthetic", shape=[4], num_classes=4, synthetic_train=1000)
    noise = NoiseConfig(kind=kind, rate=0.4)
    dataset = load_dataset(data, noise, tmp_path, 0)
    changed = int(dataset.noisy_mask.sum())
    line = noise_report(noise, dataset)
    assert line.startswith(f"label noise: {kind}, ")
    assert f"{changed:,} of 1,000 training labels changed ({changed / 1000:.1%})" in line
    if kind == "random":
        assert "400 training labels relabelled with a class drawn from all 4" in line
        assert 250 < changed < 350  # about 0.4 x 3/4
    else:
        assert changed == 400


def test_noise_is_deterministic_in_its_seed():
    clean = labels()
    a, _ = apply_label_noise(clean, "symmetric", 0.4, 10, seed=7)
    b, _ = apply_label_noise(clean, "symmetric", 0.4, 10, seed=7)
    c, _ = apply_label_noise(clean, "symmetric", 0.4, 10, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_pairflip_moves_to_next_class():
    clean = labels()
    noisy, mask = apply_label_noise(clean, "pairflip", 0.2, 10, seed=0)
    assert int(mask.sum()) == 200
    assert torch.equal(noisy[mask], (clean[mask] + 1) % 10)


def test_asymmetric_noise_follows_the_paper_maps():
    clean = labels(5000)
    noisy, mask = apply_label_noise(clean, "asymmetric", 0.4, 10, seed=0, dataset="cifar10")
    for source, target in CIFAR10_ASYMMETRIC.items():
        flipped = mask & (clean == source)
        assert (noisy[flipped] == target).all()
        assert int(flipped.sum()) == round(0.4 * int((clean == source).sum()))
    untouched = ~torch.isin(clean, torch.tensor(list(CIFAR10_ASYMMETRIC)))
    assert not mask[untouched].any()
    assert asymmetric_map("mnist", 10) == {2: 7, 3: 8, 5: 6, 6: 5}


def test_cifar100_asymmetric_stays_within_super_class():
    from sdd_tui.core.data.datasets import CIFAR100_COARSE

    mapping = asymmetric_map("cifar100", 100)
    assert sorted(mapping) == list(range(100))
    assert sorted(mapping.values()) == list(range(100))  # a permutation
    for fine, target in mapping.items():
        assert target != fine and CIFAR100_COARSE[fine] == CIFAR100_COARSE[target]


def test_no_noise():
    clean = labels()
    noisy, mask = apply_label_noise(clean, "none", 0.4, 10, seed=0)
    assert torch.equal(noisy, clean) and not mask.any()


def test_digits_split_is_fixed(tmp_path):
    x_train, y_train, x_test, y_test = load_clean(DataConfig(name="digits"), tmp_path)
    assert x_train.shape == (DIGITS_TRAIN_SIZE, 64) and x_test.shape == (1797 - DIGITS_TRAIN_SIZE, 64)
    again = load_clean(DataConfig(name="digits"), tmp_path)
    assert torch.equal(x_train, again[0]) and torch.equal(y_test, again[3])


def test_dataset_keeps_clean_labels_and_noisy_mask(tmp_path):
    data = load_dataset(DataConfig(name="digits"), NoiseConfig(kind="symmetric", rate=0.4), tmp_path, seed=0)
    assert data.noise_rate == pytest.approx(0.4, abs=1e-3)
    assert torch.equal(data.noisy_mask, data.y_train != data.y_train_clean)


def test_synthetic_any_shape(tmp_path):
    config = DataConfig(name="synthetic", shape=[3, 8, 8], num_classes=5, synthetic_train=40, synthetic_test=20)
    x_train, y_train, x_test, _ = load_clean(config, tmp_path)
    assert x_train.shape == (40, 3, 8, 8) and x_test.shape == (20, 3, 8, 8)
    assert int(y_train.max()) < 5


def test_missing_torchvision_data_offline_names_the_fix(tmp_path):
    with pytest.raises(SddError, match="data.data_dir.*data.download=true"):
        load_clean(DataConfig(name="cifar10", data_dir=tmp_path / "nothing"), tmp_path)


def test_augment_shifts_within_padding_and_flips():
    image = torch.arange(16.0).view(1, 1, 4, 4) + 1  # all non-zero
    generator = torch.Generator().manual_seed(0)
    out = augment_batch(image.repeat(64, 1, 1, 1), generator, pad=1)
    assert out.shape == (64, 1, 4, 4)
    for sample in out:
        values = sample[sample != 0]
        # every surviving value is one of the originals: a shift, with zeros where padding came in
        assert torch.isin(values, image.flatten()).all()
        assert len(values) >= 9  # at most one row and one column of padding
    flipped_or_shifted = [not torch.equal(s, image[0]) for s in out]
    assert any(flipped_or_shifted)


def test_batches_cover_every_sample_once():
    x = torch.arange(100.0).view(100, 1)
    y = torch.arange(100)
    seen = torch.cat([b for _, b in iterate_batches(x, y, 32, torch.Generator().manual_seed(1))])
    assert sorted(seen.tolist()) == list(range(100))


@pytest.mark.slow
def test_digits_are_scikit_learns_without_importing_sklearn_datasets(tmp_path):
    """The digits come from the file scikit-learn ships, read as its `load_digits` reads it, and a run's
    process never imports `sklearn.datasets` (2.7 s) for them."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from sdd_tui.core.data.datasets import _digits_arrays

    data, target = _digits_arrays()
    bunch = load_digits()
    assert np.array_equal(data, bunch.data) and np.array_equal(target, bunch.target)
    probe = ("import sys\nfrom pathlib import Path\n"
             "from sdd_tui.core.config import DataConfig\nfrom sdd_tui.core.data.datasets import load_clean\n"
             f"x = load_clean(DataConfig(name='digits'), Path({str(tmp_path)!r}))[0]\n"
             "print(len(x), 'sklearn.datasets' in sys.modules)")
    shown = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split() == ["1200", "False"], shown.stdout
