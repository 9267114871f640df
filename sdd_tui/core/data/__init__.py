"""Datasets: torchvision's own classes, Tiny ImageNet, MNIST-1D, digits, plugins; label noise; batches."""
