"""Tiny ImageNet read from the standard `tiny-imagenet-200/` folder (never downloaded):

    tiny-imagenet-200/wnids.txt                      the class ids (WordNet ids), one a line
    tiny-imagenet-200/train/<wnid>/images/*.JPEG     500 training images per class
    tiny-imagenet-200/val/images/*.JPEG              10,000 validation images (the paper's test set)
    tiny-imagenet-200/val/val_annotations.txt        file <TAB> wnid <TAB> box, one a line

Classes are numbered in the sorted order of their ids (as a folder of class folders is read). The
images (64 x 64) are decoded once with Pillow (threads) and kept as uint8; the paper's pipeline (the official
code's) is then: training, a random resized crop to 32 and a flip every epoch (core/data/resized_crop.py);
evaluation (test images, and train accuracy), resize to 45 and the central 32 x 32.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional

from ..errors import SddError, StopRequested
from .resized_crop import CropSource

FOLDER = "tiny-imagenet-200"
SOURCE_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
CROP = 32  # the side the network sees
RESIZE = 45  # evaluation: the shorter side, before the central crop
SUFFIXES = (".jpeg", ".jpg", ".png")
MAX_PIXELS = 4096 * 4096  # an image's width x height at most: Tiny ImageNet's are 64 x 64; a header may claim more


def tiny_imagenet_root(data_dir: Path) -> Path:
    """`data_dir/tiny-imagenet-200`, or `data_dir` itself when it is that folder; else SddError saying where."""
    for root in (data_dir / FOLDER, data_dir):
        if (root / "train").is_dir() and (root / "val").is_dir():
            return root
    raise SddError(f"tiny_imagenet not found: put the unzipped {FOLDER}/ folder (train/, val/, wnids.txt; from "
                   f"{SOURCE_URL}) in {data_dir}, or set data.data_dir to the folder that holds it; "
                   f"sdd-tui does not download it")


def class_ids(root: Path) -> list[str]:
    """The sorted class ids: wnids.txt, or the training folder's class folders when it is missing."""
    listed = root / "wnids.txt"
    if listed.is_file():
        ids = [line.strip() for line in _text(listed).splitlines() if line.strip()]
    else:
        ids = [path.name for path in (root / "train").iterdir() if path.is_dir()]
    if not ids:
        raise SddError(f"{root} lists no classes (wnids.txt, or class folders under train/); is it {FOLDER}?")
    return sorted(ids)


def _text(path: Path) -> str:
    """A listing's text; SddError naming the file when it is not UTF-8 (a damaged or foreign file)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SddError(f"{path} is not UTF-8 text (byte {error.start}); unzip {FOLDER} again to restore it"
                       + (", or delete it: the class folders under train/ give the classes"
                          if path.name == "wnids.txt" else "")) from None


def _images_in(folder: Path) -> list[Path]:
    """The image files of a folder; what is not a regular file (a FIFO, a device, a folder named x.JPEG) is
    skipped: opening a FIFO would wait for a writer for good."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())


def training_files(root: Path, ids: list[str]) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for label, wnid in enumerate(ids):
        folder = root / "train" / wnid
        found = _images_in(folder / "images") or _images_in(folder)
        if not found:
            raise SddError(f"no images for class {wnid} in {folder}/images; is {root} a whole {FOLDER}?")
        files += found
        labels += [label] * len(found)
    return files, labels


def validation_files(root: Path, ids: list[str]) -> tuple[list[Path], list[int]]:
    annotations = root / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise SddError(f"{annotations} is missing: it gives each validation image's class; unzip {FOLDER} again")
    index = {wnid: label for label, wnid in enumerate(ids)}
    files, labels = [], []
    for number, line in enumerate(_text(annotations).splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or not line.strip():
            continue
        if fields[1] not in index:
            raise SddError(f"{annotations} line {number}: class {fields[1]!r} is not in wnids.txt")
        image = root / "val" / "images" / fields[0]
        if not image.is_file():  # missing, or a FIFO or a device: never opened (a FIFO would hang the run)
            raise SddError(f"{annotations} line {number}: {image} is not a regular file; put the image back "
                           f"(unzip {FOLDER} again)")
        files.append(image)
        labels.append(index[fields[1]])
    if not files:
        raise SddError(f"{annotations} names no images")
    return files, labels


def decode(files: list[Path], threads: int = 8, stop: threading.Event | None = None) -> torch.Tensor:
    """(N, 3, H, W) uint8 RGB (grey images repeated); every image must have the size most of them have.
    StopRequested as soon as `stop` is set (SIGTERM, Ctrl-C, the app's stop), however long an image takes."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    def one(path: Path) -> torch.Tensor:
        try:
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise SddError(f"image {path} claims {image.width}x{image.height} pixels, far more than an "
                                   f"image of {FOLDER}; replace or remove it")
                pixels = np.asarray(image.convert("RGB"))
        except Image.DecompressionBombError:  # a header claiming ~180 million pixels or more
            raise SddError(f"image {path} claims more pixels than Pillow will open, far more than an image of "
                           f"{FOLDER}; replace or remove it") from None
        except (UnidentifiedImageError, OSError) as error:
            reason = str(error).splitlines()[0][:80]
            raise SddError(f"cannot read image {path} ({reason}); replace or remove it") from None
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1)

    images = _map_in_daemon_threads(one, files, threads, stop)
    common = Counter(image.shape for image in images).most_common(1)[0][0]
    for path, image in zip(files, images):
        if image.shape != common:
            raise SddError(f"image {path} is {image.shape[2]}x{image.shape[1]}, not {common[2]}x{common[1]} as the "
                           f"others; Tiny ImageNet's images are all the same size: replace or remove it")
    return torch.stack(images)


def _map_in_daemon_threads(function: Callable, items: list, threads: int, stop: threading.Event | None) -> list:
    """[function(item) ...] in daemon threads, the caller waiting in short steps: a signal is handled at once and
    `stop` raises StopRequested, and an item that never returns (a stuck read) does not keep the process alive."""
    results: list = [None] * len(items)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(items)):
        todo.put(index)
    errors: list[BaseException] = []
    finished = threading.Semaphore(0)

    def work() -> None:
        while not errors:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = function(items[index])
            except BaseException as error:  # handed to the caller, which raises it
                errors.append(error)
            finished.release()

    for _ in range(max(1, min(threads, len(items)))):
        threading.Thread(target=work, daemon=True, name="decode").start()
    for _ in range(len(items)):
        while not finished.acquire(timeout=0.1):
            if stop is not None and stop.is_set():
                raise StopRequested()
        if errors:
            raise errors[0]
    return results


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images scaled to [0, 1], in chunks (no float copy of them all)."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for first in range(0, len(images), chunk):
        part = images[first : first + chunk].double().div_(255)
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    count = images.numel() / images.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return mean.float(), std.float().clamp_min(1e-3)


def evaluation_view(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Resize (shorter side 45, bilinear, antialiased) then the central 32 x 32, normalised: what the
    official code evaluates on (torchvision's Resize(45) and CenterCrop(32))."""
    height, width = images.shape[2:]
    size = (RESIZE, round(RESIZE * width / height)) if height <= width else (round(RESIZE * height / width), RESIZE)
    top, left = int(round((size[0] - CROP) / 2)), int(round((size[1] - CROP) / 2))
    views = []
    for first in range(0, len(images), chunk):
        part = images[first : first + chunk].float().div_(255)
        part = functional.interpolate(part, size=size, mode="bilinear", antialias=True, align_corners=False)
        part = part[:, :, top : top + CROP, left : left + CROP]
        views.append((part - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1))
    return torch.cat(views)


def load_tiny_imagenet(data_dir: Path, stop: threading.Event | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, CropSource]:
    """(x_train, y_train, x_test, y_test, crops): evaluation views of train and val (normalised with the
    training images' per-channel statistics), and the training images for the random resized crops."""
    root = tiny_imagenet_root(Path(data_dir))
    ids = class_ids(root)
    train_files, train_labels = training_files(root, ids)
    test_files, test_labels = validation_files(root, ids)
    train, test = decode(train_files, stop=stop), decode(test_files, stop=stop)
    mean, std = channel_stats(train)
    crops = CropSource(train, mean, std, CROP)
    return (evaluation_view(train, mean, std), torch.tensor(train_labels), evaluation_view(test, mean, std),
            torch.tensor(test_labels), crops)
