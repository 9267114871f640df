"""What the machine is doing for a run: the process's CPU and memory (psutil), the GPU's utilisation and
memory (NVIDIA's NVML through nvidia-ml-py, the optional `gpu` extra).

Anything that cannot be read (no such process, another host, no NVML, no GPU, a CPU run) reads "n/a";
a monitor never raises.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import psutil

GIB = 1024**3


@dataclass(frozen=True)
class SystemSample:
    cpu_percent: float | None = None  # of one core: 200 = two cores busy
    memory_bytes: int | None = None  # the process's resident memory
    gpu_percent: float | None = None
    gpu_used_bytes: int | None = None
    gpu_total_bytes: int | None = None

    def text(self) -> str:
        """'GPU 87% 10.2/80.0 GiB  CPU 180%  mem 1.2 GiB', 'n/a' for what could not be read."""
        gpu = "n/a" if self.gpu_percent is None else f"{self.gpu_percent:.0f}%"
        if self.gpu_used_bytes is not None and self.gpu_total_bytes:
            gpu += f" {self.gpu_used_bytes / GIB:.1f}/{self.gpu_total_bytes / GIB:.1f} GiB"
        cpu = "n/a" if self.cpu_percent is None else f"{self.cpu_percent:.0f}%"
        memory = "n/a" if self.memory_bytes is None else f"{self.memory_bytes / GIB:.1f} GiB"
        return f"GPU {gpu}  CPU {cpu}  mem {memory}"


def nvml_index(device: str, visible: str | None = None) -> int | None:
    """The NVML index of a torch device ('cuda', 'cuda:1'), through CUDA_VISIBLE_DEVICES; None for
    other devices or when the visible list is not plain indices."""
    match = re.fullmatch(r"cuda(?::(\d+))?", device.strip())
    if match is None:
        return None
    index = int(match.group(1) or 0)
    if not visible:
        return index
    listed = [part.strip() for part in visible.split(",") if part.strip()]
    if index >= len(listed) or not listed[index].isdigit():
        return None
    return int(listed[index])


class SystemMonitor:
    """Samples one process (by pid; None: none, its readings are n/a) and the GPU a device string names."""

    def __init__(self, pid: int | None = None, device: str = "") -> None:
        self.process = _process(pid)
        self.gpu = _gpu_handle(device)
        if self.process is not None:
            _read(self.process.cpu_percent)  # the first reading is always 0: it starts the interval

    def sample(self) -> SystemSample:
        cpu = memory = gpu_percent = used = total = None
        if self.process is not None:
            cpu = _read(self.process.cpu_percent)
            info = _read(self.process.memory_info)
            memory = info.rss if info is not None else None
        if self.gpu is not None:
            import pynvml

            rates = _read(lambda: pynvml.nvmlDeviceGetUtilizationRates(self.gpu))
            info = _read(lambda: pynvml.nvmlDeviceGetMemoryInfo(self.gpu))
            gpu_percent = float(rates.gpu) if rates is not None else None
            used, total = (info.used, info.total) if info is not None else (None, None)
        return SystemSample(cpu, memory, gpu_percent, used, total)


def _read(getter):
    try:
        return getter()
    except Exception:  # a process that ended, a GPU that went away: the reading is n/a, not an error
        return None


def _process(pid: int | None):
    if pid is None:
        return None
    try:
        return psutil.Process(pid)
    except (psutil.Error, ValueError):
        return None


def _gpu_handle(device: str):
    index = nvml_index(device, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if index is None:
        return None
    try:
        import pynvml  # nvidia-ml-py: the optional `gpu` extra
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except pynvml.NVMLError:
        return None
