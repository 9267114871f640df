"""Datasets as device-resident tensors, label noise, and a batch iterator that augments on the device.

Sources: torchvision MNIST / CIFAR-10 / CIFAR-100 (downloaded on users' machines), scikit-learn's
bundled `digits` (no download) and `synthetic` (generated). Images are float tensors of shape
(N, C, H, W) normalised per channel; vector data is (N, D).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.config import DataConfig, NoiseConfig
from core.errors import SddError

# The standard CIFAR-100 fine -> coarse (super-class) table.
CIFAR100_COARSE = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
]  # fmt: skip

# Asymmetric (class-dependent) flips of the paper, source class -> noisy class.
MNIST_ASYMMETRIC = {2: 7, 3: 8, 5: 6, 6: 5}
CIFAR10_ASYMMETRIC = {2: 0, 4: 7, 9: 1, 3: 5, 5: 3}  # bird->plane, deer->horse, truck->car, cat<->dog

DIGITS_TRAIN_SIZE = 1200  # the fixed digits split: 1,200 train, 597 test, after a shuffle with seed 0


@dataclass
class Dataset:
    """A labelled dataset held as tensors; `y_train` carries the (possibly noisy) labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    y_train_clean: torch.Tensor
    noisy_mask: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.dim() == 4

    @property
    def noise_rate(self) -> float:
        return float(self.noisy_mask.float().mean())

    def to(self, device: torch.device | str) -> "Dataset":
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "y_train_clean", "noisy_mask", "x_test", "y_test")}
        return Dataset(name=self.name, num_classes=self.num_classes, **moved)


# ---------------------------------------------------------------------------- sources


def _torchvision_images(name: str, config: DataConfig, data_dir: Path) -> tuple[torch.Tensor, ...]:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10,
           "cifar100": torchvision.datasets.CIFAR100}[name]
    try:
        train = cls(str(data_dir), train=True, download=config.download)
        test = cls(str(data_dir), train=False, download=config.download)
    except RuntimeError as error:
        if "not found" in str(error).lower() or "corrupted" in str(error).lower():
            raise SddError(
                f"{name} not found under {data_dir}; set data.data_dir to where it is, "
                f"or --set data.download=true to fetch it"
            ) from None
        raise
    except OSError as error:
        raise SddError(
            f"cannot read {name} under {data_dir} ({error.strerror or error}); "
            f"check data.data_dir, or --set data.download=true"
        ) from None

    def to_tensor(data) -> torch.Tensor:
        images = torch.as_tensor(data)
        if images.dim() == 3:  # MNIST: (N, 28, 28)
            images = images.unsqueeze(1)
        else:  # CIFAR: (N, 32, 32, 3)
            images = images.permute(0, 3, 1, 2)
        return images.contiguous()

    return (to_tensor(train.data), torch.as_tensor(train.targets, dtype=torch.long),
            to_tensor(test.data), torch.as_tensor(test.targets, dtype=torch.long))


def _normalise_images(x_train_u8: torch.Tensor, x_test_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x_train = x_train_u8.float().div_(255)
    x_test = x_test_u8.float().div_(255)
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x_train - mean) / std, (x_test - mean) / std


def _digits() -> tuple[torch.Tensor, ...]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    mean, std = x[:DIGITS_TRAIN_SIZE].mean(0), x[:DIGITS_TRAIN_SIZE].std(0).clamp_min(1e-3)
    x = (x - mean) / std
    return x[:DIGITS_TRAIN_SIZE], y[:DIGITS_TRAIN_SIZE], x[DIGITS_TRAIN_SIZE:], y[DIGITS_TRAIN_SIZE:]


def _synthetic(config: DataConfig, seed: int) -> tuple[torch.Tensor, ...]:
    """Gaussian class clusters of any shape: learnable but not trivial."""
    generator = torch.Generator().manual_seed(10_000 + seed)
    shape = tuple(config.shape)
    centres = torch.randn((config.num_classes, *shape), generator=generator)

    def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(config.num_classes, (count,), generator=generator)
        samples = centres[labels] + 1.5 * torch.randn((count, *shape), generator=generator)
        return samples, labels

    x_train, y_train = draw(config.synthetic_train)
    x_test, y_test = draw(config.synthetic_test)
    return x_train, y_train, x_test, y_test


def _subset(x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if size is None or size >= len(y):
        return x, y
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:size]
    return x[order], y[order]


def num_classes_of(config: DataConfig) -> int:
    return {"mnist": 10, "cifar10": 10, "cifar100": 100, "digits": 10}.get(config.name, config.num_classes)


def load_clean(config: DataConfig, home: Path, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test) on the CPU, normalised, without label noise."""
    if config.name in ("mnist", "cifar10", "cifar100"):
        data_dir = Path(config.data_dir) if config.data_dir else home / "data"
        x_train_u8, y_train, x_test_u8, y_test = _torchvision_images(config.name, config, data_dir)
        x_train, x_test = _normalise_images(x_train_u8, x_test_u8)
    elif config.name == "digits":
        x_train, y_train, x_test, y_test = _digits()
    else:
        x_train, y_train, x_test, y_test = _synthetic(config, seed)
    x_train, y_train = _subset(x_train, y_train, config.train_size, seed=1)
    x_test, y_test = _subset(x_test, y_test, config.test_size, seed=2)
    return x_train, y_train, x_test, y_test


# ---------------------------------------------------------------------------- label noise


def asymmetric_map(dataset: str, num_classes: int) -> dict[int, int]:
    """The class-dependent flips of the paper for a dataset."""
    if dataset in ("mnist", "digits"):
        return dict(MNIST_ASYMMETRIC)
    if dataset == "cifar10":
        return dict(CIFAR10_ASYMMETRIC)
    if dataset == "cifar100":
        mapping: dict[int, int] = {}
        for coarse in range(20):
            members = [fine for fine, c in enumerate(CIFAR100_COARSE) if c == coarse]
            for i, fine in enumerate(members):
                mapping[fine] = members[(i + 1) % len(members)]
        return mapping
    # synthetic data has no semantics: flip each class to the next one, as pairflip does
    return {c: (c + 1) % num_classes for c in range(num_classes)}


def _choose(candidates: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    count = int(round(rate * len(candidates)))
    order = torch.randperm(len(candidates), generator=generator)
    return candidates[order[:count]]


def apply_label_noise(
    labels: torch.Tensor, kind: str, rate: float, num_classes: int, seed: int, dataset: str = "synthetic"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy labels, mask of samples whose label changed). Deterministic in `seed`.

    symmetric: exactly round(rate * N) samples move to a different class drawn uniformly;
    pairflip: the same samples count, class i -> i + 1 mod C;
    asymmetric: within each source class of the paper's map, round(rate * n_class) samples flip.
    """
    generator = torch.Generator().manual_seed(seed)
    noisy = labels.clone()
    if kind == "none" or rate == 0.0:
        return noisy, torch.zeros_like(labels, dtype=torch.bool)
    if kind == "symmetric":
        chosen = _choose(torch.arange(len(labels)), rate, generator)
        offsets = torch.randint(1, num_classes, (len(chosen),), generator=generator)
        noisy[chosen] = (labels[chosen] + offsets) % num_classes
    elif kind == "pairflip":
        chosen = _choose(torch.arange(len(labels)), rate, generator)
        noisy[chosen] = (labels[chosen] + 1) % num_classes
    elif kind == "asymmetric":
        for source, target in sorted(asymmetric_map(dataset, num_classes).items()):
            chosen = _choose(torch.nonzero(labels == source).flatten(), rate, generator)
            noisy[chosen] = target
    else:
        raise SddError(f"noise.kind: unknown kind {kind!r}; use none, symmetric, asymmetric or pairflip")
    return noisy, noisy != labels


def load_dataset(data: DataConfig, noise: NoiseConfig, home: Path, seed: int) -> Dataset:
    """The experiment's dataset with its fixed noisy training labels (on the CPU)."""
    x_train, y_train, x_test, y_test = load_clean(data, home, seed)
    classes = num_classes_of(data)
    noise_seed = noise.seed if noise.seed is not None else seed
    y_noisy, noisy_mask = apply_label_noise(y_train, noise.kind, noise.rate, classes, noise_seed, data.name)
    return Dataset(data.name, x_train, y_noisy, y_train, noisy_mask, x_test, y_test, classes)


# ---------------------------------------------------------------------------- batches


def shift_and_flip(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor,
                   pad: int = 4) -> torch.Tensor:
    """Each image's (H, W) window at offset (dy, dx) of its zero-padded copy, mirrored where `flip`.

    Two gathers (rows, then columns) on the device: no per-sample Python, no host synchronisation.
    """
    batch, channels, height, width = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = dy.to(device)[:, None] + torch.arange(height, device=device)  # (B, H)
    padded = padded.gather(2, rows[:, None, :, None].expand(batch, channels, height, width + 2 * pad))
    cols = dx.to(device)[:, None] + torch.arange(width, device=device)  # (B, W)
    cols = torch.where(flip.to(device)[:, None], cols.flip(1), cols)
    return padded.gather(3, cols[:, None, None, :].expand(batch, channels, height, width))


def augment_batch(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random shift up to `pad` pixels (zero padding) and horizontal flip, as batched tensor ops."""
    batch = len(images)
    dy = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    flip = torch.rand(batch, generator=generator) < 0.5
    return shift_and_flip(images, dy, dx, flip, pad)


def epoch_plan(samples: int, generator: torch.Generator, augment: bool, device: torch.device,
               pad: int = 4) -> torch.Tensor:
    """One epoch's randomness as a (4, N) int64 tensor on `device`: order, dy, dx, flip.

    Drawn on the CPU generator (deterministic on any device) and moved in one copy per epoch, so
    the batch loop never waits for the host.
    """
    order = torch.randperm(samples, generator=generator)
    if not augment:
        return order.to(device)[None]
    shifts = torch.randint(0, 2 * pad + 1, (2, samples), generator=generator)
    flip = (torch.rand(samples, generator=generator) < 0.5).long()
    return torch.cat([order[None], shifts, flip[None]]).to(device, non_blocking=True)


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    augment: bool = False,
    start: int = 0,
):
    """Yield shuffled (x, y) training batches of one epoch, skipping the first `start` batches.

    Batches are gathered where the data lives; image batches are shifted and flipped there when
    `augment`. The last partial batch is kept.
    """
    augment = augment and x.dim() == 4
    plan = epoch_plan(len(y), generator, augment, x.device)
    for first in range(start * batch_size, len(y), batch_size):
        index = plan[0, first : first + batch_size]
        batch_x = x.index_select(0, index)  # a few % faster than x[index] on the CPU, the same rows
        if augment:
            part = plan[1:, first : first + batch_size]
            batch_x = shift_and_flip(batch_x, part[0], part[1], part[2].bool())
        yield batch_x, y.index_select(0, index)


def batches_per_epoch(samples: int, batch_size: int) -> int:
    return (samples + batch_size - 1) // batch_size
