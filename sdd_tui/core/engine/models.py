"""The paper's networks, each with its init and the names of its prunable weights; their names and facts
are core.registry.MODELS."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import SddError
from ..plugin_checks import check_plugin_model, check_prunable
from ..plugins import call_plugin, is_plugin, load_function
from ..registry import MODELS

Builder = Callable[[ModelConfig, tuple[int, ...], int], nn.Module]


def register(name: str, image_only: bool = False, packable: bool = False) -> Callable[[Builder], Builder]:
    """Add a builder to core.registry.MODELS at run time (a built-in one is a line of that table)."""
    return MODELS.register(name, image_only=image_only, packable=packable)


def _scaled(width: int, multiplier: float) -> int:
    return max(1, int(round(width * multiplier)))


def _flat_features(input_shape: tuple[int, ...]) -> int:
    return math.prod(input_shape)


class MLP(nn.Module):
    """Fully connected ReLU network; `prunable` is every hidden weight, not the output layer."""

    def __init__(self, in_features: int, hidden: list[int], num_classes: int):
        super().__init__()
        sizes = [in_features, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.output = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.output(x)

    def default_prunable(self) -> list[str]:
        return [f"hidden.{i}.weight" for i in range(len(self.hidden))]


def lenet300_100(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    hidden = [_scaled(300, config.width), _scaled(100, config.width)]
    return MLP(_flat_features(input_shape), hidden, num_classes)


def mlp(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    hidden = [_scaled(h, config.width) for h in config.hidden]
    return MLP(_flat_features(input_shape), hidden, num_classes)


@functools.cache
def _cifar_resnet_class() -> type[nn.Module]:
    """Made on first use: `torchvision.models` imports torch._dynamo, about 2 s that an MLP run (and every
    member process of an MLP sweep) need not pay."""
    from torchvision.models.resnet import ResNet

    class CifarResNet(ResNet):
        """torchvision's ResNet (basic blocks: ResNet-18; bottlenecks: ResNet-101) with the CIFAR stem (3x3
        conv, stride 1, no max-pool) and any width."""

        def __init__(self, layers: list[int], num_classes: int, in_channels: int, width: float, block: type):
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.dilation, self.groups, self.base_width = 1, 1, 64
            planes = [_scaled(p, width) for p in (64, 128, 256, 512)]
            self.inplanes = planes[0]
            self.conv1 = nn.Conv2d(in_channels, planes[0], kernel_size=3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes[0])
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.Identity()
            self.layer1 = self._make_layer(block, planes[0], layers[0])
            self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
            self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
            self.layer4 = self._make_layer(block, planes[3], layers[3], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(planes[3] * block.expansion, num_classes)

        def default_prunable(self) -> list[str]:
            return [f"{n}.weight" for n, m in self.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    return CifarResNet


def cifar_resnet(layers: list[int], num_classes: int, in_channels: int, width: float,
                 bottleneck: bool = False) -> nn.Module:
    from torchvision.models.resnet import BasicBlock, Bottleneck

    return _cifar_resnet_class()(layers, num_classes, in_channels, width, Bottleneck if bottleneck else BasicBlock)


def _need_image(name: str, input_shape: tuple[int, ...]) -> None:
    if len(input_shape) != 3:
        raise SddError(f"model.name={name} needs image data (C, H, W); got samples of shape {list(input_shape)}")


def resnet18(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    _need_image("resnet18", input_shape)
    return cifar_resnet([2, 2, 2, 2], num_classes, input_shape[0], config.width)


def resnet101(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ResNet-101 (the paper's Tiny ImageNet network): bottleneck blocks 3, 4, 23, 3, the CIFAR stem."""
    _need_image("resnet101", input_shape)
    return cifar_resnet([3, 4, 23, 3], num_classes, input_shape[0], config.width, bottleneck=True)


VGG16_PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


class CifarVGG(nn.Module):
    """VGG-16 for CIFAR: conv-BN-ReLU stack, global average pool, one linear layer (open_lth's)."""

    def __init__(self, num_classes: int, in_channels: int, width: float):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG16_PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                out = _scaled(int(item), width)
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))

    def default_prunable(self) -> list[str]:
        return [f"{n}.weight" for n, m in self.named_modules() if isinstance(m, nn.Conv2d)]


def vgg16(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    _need_image("vgg16", input_shape)
    return CifarVGG(num_classes, input_shape[0], config.width)


def initialise(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """The paper's init: Kaiming-normal conv/linear weights, BN gamma ~ U(0, 1), beta 0."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, generator=generator)
            if module.bias is not None:
                bound = 1 / math.sqrt(module.weight[0].numel())
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, generator=generator)
            nn.init.zeros_(module.bias)


def build_model(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    if is_plugin(config.name):
        return _plugin_model(config, tuple(input_shape), num_classes, seed)
    if config.name not in MODELS:
        raise SddError(f"model.name: unknown model {config.name!r}; choose one of: {', '.join(MODELS)}")
    model = MODELS.load(config.name)(config, tuple(input_shape), num_classes)
    initialise(model, torch.Generator().manual_seed(seed))
    return model


def _plugin_model(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """The user's `module.path:function(model_config, input_shape, num_classes)`, checked. It keeps its own
    init, drawn from torch's generator seeded with `seed` (the caller's generator state is left as it was)."""
    builder = load_function(config.name, "model.name")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = call_plugin(builder, config.name, "model.name", config, input_shape, num_classes)
    check_plugin_model(model, config.name, input_shape, num_classes)
    prunable_names(model)  # a prunable() naming a missing parameter fails here, before any training
    return model


CONV_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_names(model: nn.Module, layers: str = "default") -> list[str]:
    """Names of the weight tensors that pruning may touch. Biases and BN are never included.

    default: a built-in model's own set; a plugin's `prunable()` list, else every Linear and Conv weight.
    """
    if layers == "default":
        if hasattr(model, "default_prunable"):
            return model.default_prunable()
        if hasattr(model, "prunable"):
            return check_prunable(model, model.prunable())
        names = _weights_of(model, (*CONV_LAYERS, nn.Linear))
        if not names:
            raise SddError(f"{type(model).__name__} has no Linear or Conv layer; name its prunable weights "
                           f"in a prunable() method")
        return names
    kinds = {"all": (*CONV_LAYERS, nn.Linear), "linear": (nn.Linear,), "conv": CONV_LAYERS}[layers]
    names = _weights_of(model, kinds)
    if not names:
        raise SddError(f"prune.layers={layers}: this model has no such layers; use default or all")
    return names


def _weights_of(model: nn.Module, kinds: tuple[type[nn.Module], ...]) -> list[str]:
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, kinds)]
