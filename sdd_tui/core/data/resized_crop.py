"""Random resized crops and flips of whole batches on the device (Tiny ImageNet's augmentation).

torchvision's RandomResizedCrop(size) picks, per image, a box of 8% to 100% of its area with an aspect
ratio in [3/4, 4/3] (ten tries, else the whole image), and resizes the box to size x size. Here the
boxes of a whole epoch are drawn at once on the CPU generator (deterministic on any device), and each
batch is cropped and resized in one `grid_sample` call: bilinear, like torchvision's resize, but
without its antialiasing when a box is shrunk (docs/SCIENCE.md).

The images stay uint8 at full size (`CropSource`); a crop is scaled to [0, 1] and normalised with the
training set's per-channel statistics, as the evaluation view of the same images is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional

SCALE = (0.08, 1.0)
RATIO = (3 / 4, 4 / 3)
TRIES = 10


@dataclass
class CropSource:
    """Training images at full size for a random resized crop each epoch, and how to normalise a crop."""

    images: torch.Tensor  # (N, C, H, W) uint8
    mean: torch.Tensor  # (C,) of the images scaled to [0, 1]
    std: torch.Tensor  # (C,)
    size: int  # the side of a crop, as the model sees it

    def to(self, device: torch.device | str) -> "CropSource":
        return CropSource(self.images.to(device), self.mean.to(device), self.std.to(device), self.size)

    def subset(self, index: torch.Tensor) -> "CropSource":
        return CropSource(self.images[index], self.mean, self.std, self.size)


def crop_boxes(count: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(4, count) int64 boxes (top, left, box height, box width) drawn as RandomResizedCrop draws them."""
    area = height * width
    uniform = lambda *shape: torch.rand(*shape, generator=generator, dtype=torch.float64)  # noqa: E731
    target = area * (SCALE[0] + (SCALE[1] - SCALE[0]) * uniform(TRIES, count))
    log_low, log_high = math.log(RATIO[0]), math.log(RATIO[1])
    aspect = torch.exp(log_low + (log_high - log_low) * uniform(TRIES, count))
    box_w = torch.round(torch.sqrt(target * aspect)).long()
    box_h = torch.round(torch.sqrt(target / aspect)).long()
    valid = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
    first = valid.long().argmax(0)  # the first try that fits (0 when none does: replaced below)
    pick = lambda values: values.gather(0, first[None]).squeeze(0)  # noqa: E731
    box_h, box_w = pick(box_h), pick(box_w)
    fallback_h, fallback_w = _central_box(height, width)
    fits = valid.any(0)
    box_h = torch.where(fits, box_h, torch.full_like(box_h, fallback_h))
    box_w = torch.where(fits, box_w, torch.full_like(box_w, fallback_w))
    top = (uniform(count) * (height - box_h + 1)).long()
    left = (uniform(count) * (width - box_w + 1)).long()
    top = torch.where(fits, top, (height - box_h) // 2)
    left = torch.where(fits, left, (width - box_w) // 2)
    return torch.stack([top, left, box_h, box_w])


def _central_box(height: int, width: int) -> tuple[int, int]:
    """torchvision's fallback: the whole image, cut to the nearest allowed aspect ratio."""
    ratio = width / height
    if ratio < RATIO[0]:
        return int(round(width / RATIO[0])), width
    if ratio > RATIO[1]:
        return height, int(round(height * RATIO[1]))
    return height, width


def resized_crops(images: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    """Each image's box (top, left, height, width: a (4, B) tensor) resized to size x size, bilinear,
    mirrored where `flip`; float images in, float crops out. A box the size of the output is copied exactly."""
    batch, channels, height, width = images.shape
    top, left, box_h, box_w = (row.to(images.device, torch.float32) for row in boxes)
    sign = torch.where(flip.to(images.device), -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3, device=images.device)
    theta[:, 0, 0] = sign * box_w / width  # output x in [-1, 1] -> the box's columns (align_corners=False)
    theta[:, 0, 2] = (2 * left + box_w) / width - 1
    theta[:, 1, 1] = box_h / height
    theta[:, 1, 2] = (2 * top + box_h) / height - 1
    grid = functional.affine_grid(theta, [batch, channels, size, size], align_corners=False)
    return functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def crop_plan(count: int, height: int, width: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """One epoch of crops: a (6, count) int64 tensor on `device`: order, top, left, box height, box width, flip."""
    order = torch.randperm(count, generator=generator)
    boxes = crop_boxes(count, height, width, generator)
    flip = (torch.rand(count, generator=generator) < 0.5).long()
    return torch.cat([order[None], boxes, flip[None]]).to(device, non_blocking=True)


def crop_batches(source: CropSource, labels: torch.Tensor, batch_size: int, generator: torch.Generator,
                 start: int = 0):
    """Yield one epoch of shuffled, randomly cropped and flipped (x, y) batches, skipping the first `start`."""
    images = source.images
    plan = crop_plan(len(labels), images.shape[2], images.shape[3], generator, images.device)
    mean, std = source.mean.view(1, -1, 1, 1), source.std.view(1, -1, 1, 1)
    for first in range(start * batch_size, len(labels), batch_size):
        part = plan[:, first : first + batch_size]
        batch = images.index_select(0, part[0]).float().div_(255)
        crops = resized_crops(batch, part[1:5], part[5].bool(), source.size)
        yield (crops - mean) / std, labels.index_select(0, part[0])
