"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 read by torchvision's own dataset classes (its loading code
is kept), with what they do not check: a damaged file (cut short, garbage, empty, a header claiming more
than it holds, a label past the classes) is one line naming the file and how to get it whole again.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import DataConfig
from ..errors import SddError

TORCHVISION_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100}


def torchvision_images(name: str, config: DataConfig, data_dir: Path, system_dir: Path) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test) as uint8 images (N, C, H, W) and int64 labels, read by torchvision's own
    classes; a missing or damaged file is one SddError naming it and the fix (`system_dir`: where Debian's
    Fashion-MNIST archives are unpacked from)."""
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "fashion_mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[name]
    try:
        train = cls(str(data_dir), train=True, download=config.download)
        test = cls(str(data_dir), train=False, download=config.download)
    except RuntimeError as error:
        if "not found" in str(error).lower() or "corrupted" in str(error).lower():
            raise SddError(
                f"{name} not found under {data_dir}; set data.data_dir to where it is, "
                f"or --set data.download=true to fetch it"
            ) from None
        raise _damaged(name, config, data_dir, system_dir, cls) from None
    except OSError as error:
        raise SddError(
            f"cannot read {name} under {data_dir} ({error.strerror or error}); "
            f"check data.data_dir, or --set data.download=true"
        ) from None
    except (AssertionError, KeyError, ValueError, TypeError, IndexError, EOFError):  # what a damaged file raises
        raise _damaged(name, config, data_dir, system_dir, cls) from None

    def to_tensor(data) -> torch.Tensor:
        images = torch.as_tensor(data)
        if images.dim() == 3:  # MNIST: (N, 28, 28)
            images = images.unsqueeze(1)
        else:  # CIFAR: (N, 32, 32, 3)
            images = images.permute(0, 3, 1, 2)
        return images.contiguous()

    splits = []
    for split, dataset in (("train", train), ("test", test)):
        images, labels = to_tensor(dataset.data), torch.as_tensor(dataset.targets, dtype=torch.long)
        if problem := _split_problem(images, labels, TORCHVISION_CLASSES[name]):
            where = _idx_file(cls, data_dir, split, "labels") if name in ("mnist", "fashion_mnist") else None
            raise _damaged(name, config, data_dir, system_dir, cls, (where, problem) if where else None)
        splits += [images, labels]
    return tuple(splits)


def _split_problem(images: torch.Tensor, labels: torch.Tensor, classes: int) -> str | None:
    """What is wrong with a split as read (labels and images disagree, a label past the classes), or None."""
    if len(images) != len(labels):
        return f"{len(labels):,} labels for {len(images):,} images"
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        bad = int(labels.max()) if int(labels.max()) >= classes else int(labels.min())
        return f"a label of {bad}, past the {classes} classes"
    return None


def _idx_file(cls, data_dir: Path, split: str, kind: str) -> Path:
    """torchvision's unpacked MNIST-format file of a split: `<data_dir>/<Class>/raw/train-images-idx3-ubyte`."""
    prefix = "train" if split == "train" else "t10k"
    return data_dir / cls.__name__ / "raw" / f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"


def _first_damaged_idx_file(cls, data_dir: Path) -> tuple[Path, str] | None:
    """The first of the four MNIST-format files that torchvision's own readers refuse, and why."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for split in ("train", "test"):
        for kind, read in (("images", read_image_file), ("labels", read_label_file)):
            path = _idx_file(cls, data_dir, split, kind)
            try:
                read(str(path))
            except (AssertionError, KeyError, ValueError, TypeError, IndexError, RuntimeError):
                return path, "empty, cut short, or not in MNIST's idx format"
    return None


def _damaged(name: str, config: DataConfig, data_dir: Path, system_dir: Path, cls,
             found: tuple[Path, str] | None = None) -> SddError:
    """One line naming the damaged file of a torchvision dataset and how to get it whole again."""
    if found is None and name in ("mnist", "fashion_mnist"):
        found = _first_damaged_idx_file(cls, data_dir)
    where, why = found if found else (data_dir / cls.__name__ if name.startswith("mnist") else data_dir, "damaged")
    if name == "fashion_mnist" and not config.data_dir and all(
            (system_dir / archive).is_file() for archive, _ in cls.resources):
        fix = f"delete it and run again: it is unpacked again from {system_dir}"
    else:
        fix = "delete it and run again with --set data.download=true to fetch it again"
    return SddError(f"{name}: {where} is damaged ({why}); {fix}")
