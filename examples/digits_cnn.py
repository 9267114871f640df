"""An sdd-tui plugin: your own dataset and your own model, each one function.

`data.name = "digits_cnn:digits_images"` and `model.name = "digits_cnn:small_cnn"` in
`digits-cnn.toml` name them; run from this folder (or put it on PYTHONPATH):

    cd examples && sdd-tui --config digits-cnn.toml

The dataset is scikit-learn's bundled handwritten digits (no download) as 1 x 8 x 8 images.
"""

from __future__ import annotations

import torch
from torch import nn


def digits_images(data):
    """(x_train, y_train, x_test, y_test): images N x 1 x 8 x 8, integer labels 0..9.

    `data` is the config's [data] section; `test_fraction` and `split_seed` are this plugin's own keys.
    sdd-tui adds the label noise and standardises the inputs (data.normalize), as for built-in data.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8), values 0..16
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(getattr(data, "split_seed", 0)))
    test_count = int(len(labels) * getattr(data, "test_fraction", 0.33))
    test, train = order[:test_count], order[test_count:]
    return images[train], labels[train], images[test], labels[test]


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, channels: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(8 * channels, 64)
        self.out = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.out(torch.relu(self.fc(self.pool(x).flatten(1))))

    def prunable(self) -> list[str]:
        """The weights pruning may remove: every conv and hidden linear weight, not the output layer.
        Without this method sdd-tui would prune every Linear and Conv weight."""
        return ["conv1.weight", "conv2.weight", "fc.weight"]


def small_cnn(model, input_shape, num_classes):
    """An nn.Module for samples of `input_shape` (C, H, W) and `num_classes` outputs; `model` is the
    config's [model] section, and `channels` this plugin's own key."""
    return SmallCNN(input_shape[0], getattr(model, "channels", 16), num_classes)
