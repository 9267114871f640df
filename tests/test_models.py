import pytest
import torch
from torch import nn

from core.config import ModelConfig
from core.errors import SddError
from core.models import build_model, prunable_names


def build(name, shape, width=0.125, classes=10, seed=0, **extra):
    return build_model(ModelConfig(name=name, width=width, **extra), shape, classes, seed)


@pytest.mark.parametrize("name, shape", [("lenet300_100", (1, 28, 28)), ("mlp", (64,)),
                                         ("resnet18", (3, 16, 16)), ("vgg16", (3, 16, 16))])
def test_models_build_and_classify(name, shape):
    model = build(name, shape)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10)


def test_prunable_sets_follow_the_paper():
    lenet = build("lenet300_100", (1, 28, 28), width=1.0)
    assert prunable_names(lenet) == ["hidden.0.weight", "hidden.1.weight"]  # output layer excluded
    resnet = build("resnet18", (3, 8, 8))
    names = prunable_names(resnet)
    convs = [n for n, m in resnet.named_modules() if isinstance(m, nn.Conv2d)]
    assert set(names) == {f"{n}.weight" for n in convs} | {"fc.weight"}
    assert any("downsample" in n for n in names)
    vgg = build("vgg16", (3, 8, 8))
    assert all(isinstance(dict(vgg.named_modules())[n[:-7]], nn.Conv2d) for n in prunable_names(vgg))
    assert len(prunable_names(vgg)) == 13
    assert "hidden.0.weight" in prunable_names(lenet, "all") and "output.weight" in prunable_names(lenet, "all")
    for model in (lenet, resnet, vgg):
        for name in prunable_names(model, "all"):
            assert name.endswith(".weight") and "bn" not in name


def test_cifar_stem_and_width():
    resnet = build("resnet18", (3, 32, 32), width=0.25)
    assert resnet.conv1.kernel_size == (3, 3) and resnet.conv1.stride == (1, 1)
    assert isinstance(resnet.maxpool, nn.Identity)
    assert resnet.conv1.out_channels == 16 and resnet.fc.in_features == 128


def test_paper_init_for_batch_norm_and_determinism():
    model = build("resnet18", (3, 8, 8))
    bn = model.bn1
    assert ((bn.weight >= 0) & (bn.weight <= 1)).all() and (bn.bias == 0).all()
    again = build("resnet18", (3, 8, 8))
    other = build("resnet18", (3, 8, 8), seed=1)
    assert torch.equal(model.conv1.weight, again.conv1.weight)
    assert not torch.equal(model.conv1.weight, other.conv1.weight)


def test_image_models_refuse_vector_data():
    with pytest.raises(SddError, match="needs image data"):
        build("resnet18", (64,))
