"""Samples per second of the project's training loop against the standard recipe, in one process.

Both sides train the same network (same init, same masks: 20% pruned, as in round 1) with the same
batch size on the same synthetic data of a dataset's shape; nothing is downloaded. The project side
is core.engine.training.Trainer (the fast path); the reference is core.engine.reference's PIL + DataLoader
pipeline with 2 workers and eager fp32. Each side runs warm-up batches first, then is timed. The
project's evaluation (core.engine.training.evaluate on a generated test set) is timed too, for the seconds
an epoch takes with its evaluation, as a run spends them.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..config import ModelConfig, TrainConfig, load_preset, preset_names
from ..data.datasets import Dataset, _normalise_images
from ..errors import SddError
from . import pruning
from .models import MODELS, build_model, prunable_names
from .reference import pil_loader, reference_step
from .runtime_choices import RuntimeChoices
from .training import Control, Trainer, evaluate

# shape (C, H, W), classes, training samples of the real dataset, augmentation of its standard recipe
BENCH_DATA = {
    "mnist": ((1, 28, 28), 10, 60_000, False),
    "cifar10": ((3, 32, 32), 10, 50_000, True),
    "cifar100": ((3, 32, 32), 100, 50_000, True),
}
FALLBACK_SCHEDULE = (30, 160)  # pruning rounds, epochs per round: the paper's ResNet-18 schedule
TEST_SAMPLES = 10_000  # the test set of MNIST, CIFAR-10 and CIFAR-100 alike
EVAL_REPEATS = 3  # timed evaluations after a warm-up one; the median is the figure


@dataclass
class BenchResult:
    model: str
    data: str
    width: float
    device: str
    device_name: str
    threads: int
    omp_env: str  # the OpenMP wait settings this process runs under
    torch: str
    batch_size: int
    batches: int
    chunks: int
    warmup_batches: int
    augment: bool
    compile: bool
    project_samples_per_s: float
    reference_samples_per_s: float
    ratio: float
    project_cpu_us_per_sample: float | None  # CPU time per sample (all processes; None on GPUs)
    reference_cpu_us_per_sample: float | None
    preset: str | None
    rounds: int
    epochs: int
    train_samples: int
    project_full_run_s: float
    reference_full_run_s: float
    project_chunks_samples_per_s: list[float]  # each timed chunk, in the order they ran
    reference_chunks_samples_per_s: list[float]
    test_samples: int  # the test set a run evaluates after every epoch
    eval_samples: int  # how many of them were timed (at most as many as the timed batches hold)
    project_eval_samples_per_s: float
    project_epoch_s: float  # one epoch as a run spends it: training, then evaluating the test set
    project_full_run_with_eval_s: float  # every epoch with its evaluation, plus each round's train-set pass

    def to_dict(self) -> dict:
        return asdict(self)


def omp_env() -> str:
    return " ".join(f"{key}={os.environ[key]}" for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if key in os.environ)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"{model or platform.processor() or 'CPU'} ({os.cpu_count()} cores)"


def synthetic_images(shape: tuple[int, int, int], classes: int, count: int,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images stored as torchvision stores them: (N, H, W) grey or (N, H, W, 3), and labels."""
    generator = np.random.default_rng(seed)
    channels, height, width = shape
    layout = (count, height, width) if channels == 1 else (count, height, width, channels)
    return generator.integers(0, 256, layout, dtype=np.uint8), generator.integers(0, classes, count)


def matching_preset(model: str, data: str) -> str | None:
    for name in preset_names():
        config = load_preset(name)
        if config.model.name == model and config.data.name == data:
            return name
    return None


def _device_dataset(images: np.ndarray, labels: np.ndarray, classes: int, device: torch.device,
                    test: tuple[np.ndarray, np.ndarray]) -> Dataset:
    """The project's view of the data: normalised float tensors on the device, as core.data.datasets makes them."""

    def channels_first(array: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(array)
        return pixels.unsqueeze(1) if pixels.dim() == 3 else pixels.permute(0, 3, 1, 2).contiguous()

    test_images, test_labels = test
    x, x_test = _normalise_images(channels_first(images), channels_first(test_images))
    y = torch.from_numpy(labels).long()
    return Dataset("bench", x, y, y, torch.zeros_like(y, dtype=torch.bool), x_test,
                   torch.from_numpy(test_labels).long(), classes).to(device)


def _subset(data: Dataset, count: int) -> Dataset:
    return Dataset(data.name, data.x_train[:count], data.y_train[:count], data.y_train_clean[:count],
                   data.noisy_mask[:count], data.x_test, data.y_test, data.num_classes)


def _round_one_masks(model: torch.nn.Module) -> pruning.Masks:
    masks = pruning.full_masks(model, prunable_names(model))
    scores = pruning.random_scores(masks, torch.Generator().manual_seed(0))
    return pruning.prune_masks(scores, masks, 0.2)


def _build(model_config: ModelConfig, data: Dataset, device: torch.device, fast: bool) -> torch.nn.Module:
    model = build_model(model_config, data.input_shape, data.num_classes, seed=0).to(device)
    if RuntimeChoices.for_device(device, fast, amp=True).channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Throughput over a few consecutive chunks of batches: the median resists a noisy shared machine."""

    chunk_seconds: list[float]
    samples_per_chunk: int
    cpu_seconds: float | None  # CPU time of every process involved (the reference's workers too)

    def __add__(self, other: "Timing") -> "Timing":
        cpu = None if self.cpu_seconds is None or other.cpu_seconds is None else self.cpu_seconds + other.cpu_seconds
        return Timing(self.chunk_seconds + other.chunk_seconds, self.samples_per_chunk, cpu)

    @property
    def samples_per_s(self) -> float:
        return self.samples_per_chunk / statistics.median(self.chunk_seconds)

    @property
    def chunk_rates(self) -> list[float]:
        return [round(self.samples_per_chunk / seconds, 1) for seconds in self.chunk_seconds]

    @property
    def cpu_us_per_sample(self) -> float | None:
        if self.cpu_seconds is None:
            return None
        return 1e6 * self.cpu_seconds / (self.samples_per_chunk * len(self.chunk_seconds))


def chunk_sizes(batches: int) -> tuple[int, int]:
    """(chunks, batches per chunk): up to 5 chunks of at least one batch."""
    chunks = min(5, batches)
    return chunks, batches // chunks


def _time_chunks(run_chunk, chunks: int, device: torch.device,
                 other_pids: list[int] = ()) -> tuple[list[float], float | None]:
    """Wall seconds of each of `chunks` calls, and the CPU seconds of this process plus `other_pids`."""
    cpu_before, others_before = time.process_time(), _cpu_of(other_pids)
    seconds = []
    for _ in range(chunks):
        started = time.perf_counter()
        run_chunk()
        _sync(device)
        seconds.append(time.perf_counter() - started)
    cpu, others_after = time.process_time() - cpu_before, _cpu_of(other_pids)
    if others_before is None or others_after is None:
        return seconds, None
    return seconds, cpu + others_after - others_before


def _cpu_of(pids: list[int]) -> float | None:
    """User + system CPU seconds of other processes (Linux /proc); None where that cannot be read."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def project_loop(model_config: ModelConfig, data: Dataset, train: TrainConfig, device: torch.device,
                 warmup: int, per_chunk: int,
                 compile_model: bool = False) -> tuple[Callable[[int], Timing], Callable[[], float]]:
    """Trainer.train (the fast path) after a warm-up run of `warmup` batches: a timer of n chunks, and
    one of the evaluation of `data`'s test set (seconds, the median of a few after a warm-up one)."""
    from .training import compile_model as compile_now

    model = _build(model_config, data, device, fast=True)
    masks = _round_one_masks(model)
    forward = None
    if compile_model:
        choices = Trainer(model, data, train, {}, Control(), amp=True).runtime
        forward, _ = compile_now(model, data.x_train[: train.batch_size], data.y_train[: train.batch_size],
                                 choices.autocast(device), choices.compile_backend)
    size = train.batch_size

    def trainer(count: int) -> Trainer:
        return Trainer(model, _subset(data, count * size), train, masks, Control(), amp=True, forward=forward)

    trainer(warmup).train()
    _sync(device)
    chunk = trainer(per_chunk)

    def time_chunks(count: int) -> Timing:
        seconds, cpu = _time_chunks(chunk.train, count, device)
        return Timing(seconds, per_chunk * size, cpu if device.type == "cpu" else None)

    def time_evaluation() -> float:
        def run() -> None:  # what Trainer does after every epoch
            evaluate(chunk.runner, data.x_test, data.y_test, train.eval_batch_size, chunk.autocast())

        run()  # builds the evaluation batch shapes' kernels (and graphs, when compiled) first
        return statistics.median(_time_chunks(run, EVAL_REPEATS, device)[0])

    return time_chunks, time_evaluation


def measure_reference(model_config: ModelConfig, data: Dataset, images: np.ndarray, labels: np.ndarray,
                      train: TrainConfig, device: torch.device, warmup: int, batches: int, workers: int = 2) -> Timing:
    """The standard recipe: PIL images, ToTensor + Normalize, a 2-worker shuffling DataLoader, eager fp32."""
    model = _build(model_config, data, device, fast=False)
    params = dict(model.named_parameters())
    masks = [(params[name], mask.to(params[name].dtype)) for name, mask in _round_one_masks(model).items()]
    if train.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=train.lr, momentum=train.momentum,
                                    weight_decay=train.weight_decay)
    loader = pil_loader(images, labels, train.batch_size, train.augment, workers)
    chunks, per_chunk = chunk_sizes(batches)
    model.train()
    running = [iter(loader)]  # the DataLoader iterator; dropping the last reference stops its workers

    def steps(count: int) -> None:
        for _ in range(count):
            reference_step(model, optimizer, masks, *next(running[0]), device)

    try:
        steps(warmup)
        worker_pids = [worker.pid for worker in getattr(running[0], "_workers", [])]
        seconds, cpu = _time_chunks(lambda: steps(per_chunk), chunks, device, worker_pids)
    finally:
        running.clear()
    return Timing(seconds, per_chunk * train.batch_size, cpu if device.type == "cpu" else None)


def _validate(model: str, data: str, batches: int, batch_size: int, width: float) -> None:
    if model not in MODELS:
        raise SddError(f"--model {model!r}: choose one of {', '.join(MODELS)}")
    if data not in BENCH_DATA:
        raise SddError(f"--data {data!r}: choose one of {', '.join(BENCH_DATA)} (synthetic data of that shape)")
    if batches < 1 or batch_size < 1:
        raise SddError("--batches and --batch-size must be at least 1")
    if not 0 < width <= 16:
        raise SddError(f"--width {width}: use a multiplier in (0, 16]")


def run_bench(model: str = "lenet300_100", data: str = "mnist", device: str = "auto", batches: int = 200,
              batch_size: int = 128, width: float = 1.0, compile_model: bool = False,
              warmup: int | None = None, preset: str | None = None) -> BenchResult:
    """Measure both loops and estimate a full preset run on this device."""
    from .device import resolve_device

    _validate(model, data, batches, batch_size, width)
    torch_device = resolve_device(device)
    shape, classes, full_samples, augment = BENCH_DATA[data]
    preset = preset or matching_preset(model, data)
    preset_config = load_preset(preset) if preset else None
    base = preset_config.train if preset_config else TrainConfig(lr=0.05, momentum=0.9, augment=augment)
    train = base.model_copy(update={"epochs": 1, "batch_size": batch_size, "augment": augment})
    warmup = warmup if warmup is not None else max(1, min(20, batches // 5))
    images, labels = synthetic_images(shape, classes, (warmup + batches) * batch_size)
    test_samples = (preset_config.data.test_size if preset_config and preset_config.data.test_size
                    else TEST_SAMPLES)
    eval_samples = min(test_samples, batches * batch_size)  # keeps a CPU bench of a few batches short
    test = synthetic_images(shape, classes, eval_samples, seed=1)
    dataset = _device_dataset(images, labels, classes, torch_device, test)
    model_config = ModelConfig(name=model, width=width)
    chunks, per_chunk = chunk_sizes(batches)
    # the project's chunks come before and after the reference's, so that both sides are timed over
    # the same stretch of time: a shared or virtual machine's speed drifts over seconds
    time_project, time_evaluation = project_loop(model_config, dataset, train, torch_device, warmup, per_chunk,
                                                 compile_model)
    project = time_project(chunks - chunks // 2)
    reference = measure_reference(model_config, dataset, images, labels, train, torch_device, warmup, batches)
    if chunks // 2:
        project = project + time_project(chunks // 2)
    eval_rate = eval_samples / time_evaluation()
    rounds, epochs = (preset_config.prune.rounds, preset_config.train.epochs) if preset_config else FALLBACK_SCHEDULE
    samples = (preset_config.data.train_size if preset_config and preset_config.data.train_size else full_samples)
    total = (rounds + 1) * epochs * samples
    fast, slow = project.samples_per_s, reference.samples_per_s
    epoch_s = samples / fast + test_samples / eval_rate
    full_with_eval = (rounds + 1) * (epochs * epoch_s + samples / eval_rate)  # + core.engine.experiment.round_metrics
    return BenchResult(model, data, width, str(torch_device), device_name(torch_device), torch.get_num_threads(),
                       omp_env(), torch.__version__, batch_size, chunks * per_chunk,
                       chunks, warmup, augment, compile_model, fast, slow, fast / slow, project.cpu_us_per_sample,
                       reference.cpu_us_per_sample, preset, rounds, epochs, samples, total / fast, total / slow,
                       project.chunk_rates, reference.chunk_rates, test_samples, eval_samples, eval_rate, epoch_s,
                       full_with_eval)
