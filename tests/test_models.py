import re

import pytest
import torch
from torch import nn

from sdd_tui.core.config import ModelConfig
from sdd_tui.core.engine.models import build_model, prunable_names
from sdd_tui.core.errors import SddError


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


CONV1D_NET = """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, channels, classes):
            super().__init__()
            self.conv = nn.Conv1d(1, channels, 3)
            self.norm = nn.BatchNorm1d(channels)
            self.head = nn.Linear(channels, classes)

        def forward(self, x):
            return self.head(self.norm(self.conv(x.unsqueeze(1))).mean(-1))

    def build(model, input_shape, num_classes):
        return Net(model.channels, num_classes)

    def listed(model, input_shape, num_classes):
        net = Net(4, num_classes)
        net.prunable = lambda: ["conv.weight"]
        return net

    def misnamed(model, input_shape, num_classes):
        net = Net(4, num_classes)
        net.prunable = lambda: ["conv.weight", "head.wieght"]
        return net

    def too_few_outputs(model, input_shape, num_classes):
        return Net(4, num_classes - 1)

    def not_a_module(model, input_shape, num_classes):
        return [Net(4, num_classes)]
"""


def plugin(module: str, function: str, **extra) -> ModelConfig:
    return ModelConfig(name=f"{module}:{function}", **extra)


def test_plugin_model_gets_its_section_and_keeps_its_own_init_under_the_seed(plugin_module):
    name = plugin_module(CONV1D_NET)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    model = build_model(plugin(name, "build", channels=6), (40,), 10, seed=0)
    assert torch.equal(torch.rand(1), expected_next)  # the caller's generator is left alone
    assert model.conv.out_channels == 6 and model(torch.randn(3, 40)).shape == (3, 10)
    again = build_model(plugin(name, "build", channels=6), (40,), 10, seed=0)
    other = build_model(plugin(name, "build", channels=6), (40,), 10, seed=1)
    assert torch.equal(model.conv.weight, again.conv.weight)
    assert not torch.equal(model.conv.weight, other.conv.weight)


def test_plugin_prunable_defaults_to_every_linear_and_conv_weight_or_its_own_list(plugin_module):
    name = plugin_module(CONV1D_NET)
    model = build_model(plugin(name, "build", channels=6), (40,), 10, seed=0)
    assert prunable_names(model) == ["conv.weight", "head.weight"]  # the output layer too; not BN
    assert prunable_names(build_model(plugin(name, "listed"), (40,), 10, seed=0)) == ["conv.weight"]
    assert prunable_names(model, "conv") == ["conv.weight"]  # Conv1d counts as conv


@pytest.mark.parametrize("function, fragment", [
    ("misnamed", "prunable() names 'head.wieght', which the model does not have; its parameters are conv.weight"),
    ("too_few_outputs", "output is [2, 9] for a batch of 2 samples of shape [40]; it must be [2, 10]"),
    ("not_a_module", "returned a list of 1 (Net); return a torch.nn.Module"),
    ("nothing_here", "has no function 'nothing_here'"),
])
def test_bad_model_plugins_are_one_line_errors(plugin_module, function, fragment):
    name = plugin_module(CONV1D_NET)
    with pytest.raises(SddError, match=re.escape(fragment)) as error:
        build_model(plugin(name, function), (40,), 10, seed=0)
    assert "\n" not in str(error.value)
