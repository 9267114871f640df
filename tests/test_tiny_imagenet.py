"""Tiny ImageNet from a generated folder of the standard layout, its crops on the device, and ResNet-101."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from sdd_tui.core.config import DataConfig, ModelConfig, NoiseConfig
from sdd_tui.core.data.datasets import load_dataset, training_batches
from sdd_tui.core.data.resized_crop import crop_boxes, resized_crops
from sdd_tui.core.data.tiny_imagenet import evaluation_view, load_tiny_imagenet
from sdd_tui.core.engine.models import build_model, prunable_names
from sdd_tui.core.errors import SddError
from sdd_tui.core.events import RoundEnded

WNIDS = ["n003", "n001", "n002"]  # listed unsorted: classes are numbered in sorted order
COLOURS = {"n001": (200, 30, 30), "n002": (30, 200, 30), "n003": (30, 30, 200)}
SIDE = 16


def write_image(path: Path, colour, index: int, grey: bool = False) -> None:
    pixels = torch.zeros(SIDE, SIDE, 3, dtype=torch.uint8)
    pixels[:] = torch.tensor(colour, dtype=torch.uint8)
    pixels[index % SIDE, :, :] = 255  # a line that moves, so images differ
    image = Image.fromarray(pixels.numpy())
    image = image.convert("L") if grey else image
    image.save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG", quality=95)


def write_tiny_imagenet(data_dir: Path, per_class: int = 6, val_per_class: int = 2) -> Path:
    root = data_dir / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(WNIDS) + "\n", encoding="utf-8")
    lines = []
    for wnid in WNIDS:
        folder = root / "train" / wnid / "images"
        folder.mkdir(parents=True)
        for i in range(per_class):
            write_image(folder / f"{wnid}_{i}.JPEG", COLOURS[wnid], i, grey=(wnid == "n002" and i == 0))
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("", encoding="utf-8")
        for i in range(val_per_class):
            name = f"val_{wnid}_{i}.{'png' if i else 'JPEG'}"
            write_image(root / "val" / "images" / name, COLOURS[wnid], i + 3)
            lines.append(f"{name}\t{wnid}\t0\t0\t{SIDE}\t{SIDE}")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data_dir


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_tiny_imagenet(tmp_path_factory.mktemp("datasets"))


def test_the_folder_reads_as_evaluation_views_and_crops_with_sorted_class_numbers(data_dir):
    x_train, y_train, x_test, y_test, crops = load_tiny_imagenet(data_dir)
    assert x_train.shape == (18, 3, 32, 32) and x_test.shape == (6, 3, 32, 32)
    assert y_train.tolist() == [0] * 6 + [1] * 6 + [2] * 6  # n001, n002, n003
    assert y_test.tolist() == [2, 2, 0, 0, 1, 1]  # val_annotations.txt's order, classes by sorted id
    assert crops.images.dtype == torch.uint8 and crops.images.shape == (18, 3, SIDE, SIDE) and crops.size == 32
    red = crops.images[0].float().mean(dim=(1, 2))
    assert red[0] > 150 and red[2] < 80  # n001 is red; RGB order kept
    assert torch.equal(crops.images[6, 0], crops.images[6, 1])  # a grey JPEG comes back as three equal channels
    scaled = crops.images.double() / 255
    assert torch.allclose(crops.mean.double(), scaled.mean(dim=(0, 2, 3)), atol=1e-5)
    assert x_train.mean(dim=(0, 2, 3)).abs().max() < 0.2  # normalised with the training statistics
    dataset = load_dataset(DataConfig(name="tiny_imagenet", data_dir=data_dir, train_size=12),
                           NoiseConfig(kind="random", rate=0.5), Path("unused"), 0)
    assert dataset.num_classes == 3 and len(dataset.crops.images) == len(dataset.y_train) == 12
    crops = dataset.crops  # the subset keeps images and their evaluation views together
    assert torch.allclose(evaluation_view(crops.images, crops.mean, crops.std), dataset.x_train)


def test_without_the_folder_the_error_says_where_to_put_it(tmp_path):
    with pytest.raises(SddError, match=r"put the unzipped tiny-imagenet-200/ folder .* in .*nothing.*data.data_dir"):
        load_tiny_imagenet(tmp_path / "nothing")
    root = write_tiny_imagenet(tmp_path / "broken") / "tiny-imagenet-200"
    (root / "val" / "val_annotations.txt").unlink()
    with pytest.raises(SddError, match="val_annotations.txt is missing"):
        load_tiny_imagenet(root)  # the folder itself is accepted too


def test_a_box_the_output_size_is_copied_and_a_flip_mirrors_it():
    image = torch.arange(2 * 8 * 8, dtype=torch.float32).view(1, 2, 8, 8)
    whole = resized_crops(image, torch.tensor([[0], [0], [8], [8]]), torch.tensor([False]), 8)
    assert torch.allclose(whole, image, atol=1e-4)
    part = resized_crops(image, torch.tensor([[2], [1], [4], [4]]), torch.tensor([True]), 4)
    assert torch.allclose(part, image[:, :, 2:6, 1:5].flip(3), atol=1e-4)
    half = resized_crops(image, torch.tensor([[0], [0], [8], [8]]), torch.tensor([False]), 4)
    assert torch.allclose(half, image.view(1, 2, 4, 2, 4, 2).mean(dim=(3, 5)), atol=1e-4)  # 2x2 means, bilinear


def test_boxes_are_drawn_as_random_resized_crop_draws_them():
    boxes = crop_boxes(20_000, 64, 64, torch.Generator().manual_seed(0))
    top, left, height, width = boxes
    assert (top >= 0).all() and (left >= 0).all() and (top + height <= 64).all() and (left + width <= 64).all()
    area = (height * width).double() / 64**2
    assert area.min() >= 0.07 and area.max() <= 1.0 and 0.45 < area.mean() < 0.6  # ~U(0.08, 1) of the area
    ratio = width.double() / height
    assert ratio.min() > 0.7 and ratio.max() < 1.45


def test_training_batches_crop_at_random_each_epoch(data_dir):
    dataset = load_dataset(DataConfig(name="tiny_imagenet", data_dir=data_dir), NoiseConfig(kind="none"),
                           Path("unused"), 0)
    first = list(training_batches(dataset, 8, torch.Generator().manual_seed(1), augment=True))
    again = list(training_batches(dataset, 8, torch.Generator().manual_seed(1), augment=True))
    other = list(training_batches(dataset, 8, torch.Generator().manual_seed(2), augment=True))
    assert [x.shape for x, _ in first] == [(8, 3, 32, 32), (8, 3, 32, 32), (2, 3, 32, 32)]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again))
    assert not torch.equal(first[0][0], other[0][0])
    plain = list(training_batches(dataset, 8, torch.Generator().manual_seed(1), augment=False))
    assert all(torch.equal(x, dataset.x_train[[int(i) for i in torch.randperm(18, generator=torch.Generator()
               .manual_seed(1))[k * 8 : k * 8 + len(x)]]]) for k, (x, _) in enumerate(plain))
    from sdd_tui.core.engine.reference import loader_batches

    slow = list(loader_batches(dataset, 8, torch.Generator().manual_seed(1), augment=True))
    assert [x.shape for x, _ in slow] == [(8, 3, 32, 32), (8, 3, 32, 32), (2, 3, 32, 32)]


def test_resnet101_is_torchvisions_bottleneck_resnet_with_the_cifar_stem():
    model = build_model(ModelConfig(name="resnet101", width=0.0625), (3, 32, 32), 200, seed=0)
    names = prunable_names(model)
    assert len(names) == 105 and names[0] == "conv1.weight" and names[-1] == "fc.weight"  # 104 convs and fc
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert model.fc.in_features == 4 * 32  # the last bottleneck's 4x expansion
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 200)


@pytest.mark.slow
def test_a_oneshot_resnet101_run_on_the_folder(data_dir, run_experiment, smoke_config, tmp_path):
    config = smoke_config("data.name=tiny_imagenet", f"data.data_dir={str(data_dir)!r}", "model.name=resnet101",
                          "model.width=0.0625", "train.augment=true", "train.batch_size=8", "train.epochs=1",
                          "prune.schedule=oneshot", "prune.rounds=2", "prune.levels=[2]", "noise.kind=random")
    run_id, status, events = run_experiment(config, tmp_path)
    assert status == "finished"
    results = {e.result["round"]: e.result for e in events if isinstance(e, RoundEnded)}
    assert sorted(results) == [0, 2] and results[2]["sparsity"] == pytest.approx(0.36, abs=1e-3)
