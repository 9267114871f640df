"""The standard recipe, kept as the slow path (`runtime.fast = false`) and as the benchmark's yardstick.

A torchvision-style Dataset returns one sample at a time through per-sample transforms, a
torch.utils.data.DataLoader shuffles and collates, and the model trains in eager fp32: what most
papers' code (and the sparse double descent paper's) does. Nothing here is tuned on purpose.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.datasets import Dataset as ExperimentData
from ..data.resized_crop import CropSource


class SampleDataset(torch.utils.data.Dataset):
    """Samples from CPU tensors, each passed through `transform` (a torchvision transform or None)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform: Callable | None = None):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.x[index]
        if self.transform is not None:
            sample = self.transform(sample)
        return sample, int(self.y[index])


def tensor_transforms(augment: bool, image_shape: tuple[int, ...]) -> Callable | None:
    """torchvision's per-sample RandomCrop(padding=4) + RandomHorizontalFlip on normalised tensors."""
    if not augment or len(image_shape) != 3:
        return None
    from torchvision import transforms

    return transforms.Compose([transforms.RandomCrop(image_shape[1:], padding=4),
                               transforms.RandomHorizontalFlip()])


def crop_transforms(crops: CropSource) -> Callable:
    """torchvision's RandomResizedCrop + RandomHorizontalFlip on a uint8 image, then scaled and normalised."""
    from torchvision import transforms

    return transforms.Compose([transforms.RandomResizedCrop(crops.size, antialias=True),
                               transforms.RandomHorizontalFlip(), transforms.ConvertImageDtype(torch.float32),
                               transforms.Normalize(crops.mean.tolist(), crops.std.tolist())])


def loader_batches(data: ExperimentData, batch_size: int, generator: torch.Generator, augment: bool,
                   skip: int = 0, device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of the slow path: a shuffling DataLoader over `data` (on the CPU), batches moved to `device`.

    torchvision transforms draw from torch's global generator; it is seeded from the epoch's
    generator inside `fork_rng`, so the epoch is reproducible and the caller's RNG is untouched.
    """
    if augment and data.crops is not None:  # Tiny ImageNet: torchvision's own RandomResizedCrop per sample
        dataset = SampleDataset(data.crops.images, data.y_train, crop_transforms(data.crops))
    else:
        dataset = SampleDataset(data.x_train, data.y_train, tensor_transforms(augment, data.input_shape))
    transform_seed = int(torch.randint(2**62, (1,), generator=generator))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(transform_seed)
        for inputs, targets in itertools.islice(loader, skip, None):
            yield inputs.to(device), targets.to(device)


# ---------------------------------------------------------------------------- the benchmark's reference


class PilImageDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per sample: a uint8 array to a PIL image, then transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        image = self.images[index]
        image = Image.fromarray(image, mode="L" if image.ndim == 2 else "RGB")
        return self.transform(image), int(self.labels[index])


def pil_transforms(augment: bool, mean: list[float], std: list[float], size: int) -> Callable:
    from torchvision import transforms

    steps = [transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip()] if augment else []
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(mean, std)])


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """One file in MNIST's raw format (big-endian magic number and sizes, then the uint8 values)."""
    header = magic.to_bytes(4, "big") + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def torchvision_mnist(images: np.ndarray, labels: np.ndarray, transform: Callable) -> torch.utils.data.Dataset:
    """torchvision.datasets.MNIST itself, over `images` written in MNIST's file format to a temporary
    folder (it reads them into memory when built): the standard recipe's Dataset, not a look-alike."""
    from torchvision.datasets import MNIST

    with tempfile.TemporaryDirectory() as root:
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for split, count in (("train", len(labels)), ("t10k", 1)):
            _write_idx(raw / f"{split}-images-idx3-ubyte", images[:count], 2051)
            _write_idx(raw / f"{split}-labels-idx1-ubyte", labels[:count], 2049)
        return MNIST(root, train=True, download=False, transform=transform)


def pil_loader(images: np.ndarray, labels: np.ndarray, batch_size: int, augment: bool, workers: int = 2,
               seed: int = 0) -> DataLoader:
    """The standard recipe's input pipeline over uint8 images (N, H, W) or (N, H, W, 3).

    Grey images go through torchvision.datasets.MNIST itself; colour images through PilImageDataset,
    which does what torchvision.datasets.CIFAR10 does per sample (that class insists on the real files'
    checksums)."""
    scaled = images.astype(np.float32) / 255
    mean = np.atleast_1d(scaled.mean(axis=(0, 1, 2))).tolist()  # per channel (one for grey images)
    std = np.atleast_1d(scaled.std(axis=(0, 1, 2))).tolist()
    transform = pil_transforms(augment, mean, std, images.shape[1])
    if images.ndim == 3:
        dataset = torchvision_mnist(images, labels, transform)
    else:
        dataset = PilImageDataset(images, labels, transform)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                      generator=torch.Generator().manual_seed(seed))


def reference_step(model: nn.Module, optimizer: torch.optim.Optimizer, masks: list[tuple[nn.Parameter, torch.Tensor]],
                   inputs: torch.Tensor, targets: torch.Tensor, device: torch.device) -> float:
    """One eager fp32 step as the paper's code takes it: move, forward, backward, step, re-mask, log."""
    inputs, targets = inputs.to(device), targets.to(device)
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        for param, mask in masks:
            param.mul_(mask)
    return loss.item()
