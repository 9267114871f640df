"""What the fast path turns on for a device, decided in one place.

On CUDA the fast path lays image networks out channels_last, lets cuDNN pick its fastest kernels and
autocasts to bf16 with a fused optimizer step (on cards without bf16: fp16 with loss scaling and a
foreach step). torch runs each of these on a CPU too; only the decision (`RuntimeChoices.for_device`)
keeps them off there. Tests hand a Trainer the choices a GPU gets, so that a mistake in those lines
fails on a CPU, not on a user's GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RuntimeChoices:
    channels_last: bool = False  # image networks in NHWC memory format (what tensor cores read)
    fused_optimizer: bool = False  # the optimizer step in one kernel; else foreach
    cudnn_benchmark: bool = False  # shapes repeat every batch: let cuDNN time its kernels once
    amp_dtype: torch.dtype | None = None  # autocast's dtype; None trains in fp32
    compile_backend: str = "inductor"  # what torch.compile builds with (runtime.compile)

    @classmethod
    def for_device(cls, device: torch.device, fast: bool, amp: bool, bf16: bool | None = None) -> RuntimeChoices:
        """The fast path's choices on CUDA, none elsewhere or on the slow path; `bf16` (whether the card has it)
        is asked of the card when not given."""
        if not fast or device.type != "cuda":
            return cls()
        dtype = amp_dtype(device, amp, bf16)
        # fp16's loss scaling skips the steps whose gradients overflow (often the first ones), and torch's fused
        # SGD leaves its momentum uninitialised (torch.empty_like) when the first step is skipped: the weights
        # then blow up. foreach SGD and Adam skip cleanly. (torch 2.14; tests/test_cuda_paths_on_cpu.py)
        return cls(channels_last=True, fused_optimizer=dtype != torch.float16, cudnn_benchmark=True, amp_dtype=dtype)

    @property
    def grad_scaling(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
        return self.amp_dtype == torch.float16

    def autocast(self, device: torch.device):
        """A context factory for autocast to `amp_dtype` on `device`, or None (fp32)."""
        dtype = self.amp_dtype
        if dtype is None:
            return None
        return lambda: torch.autocast(device.type, dtype=dtype)


def amp_dtype(device: torch.device, enabled: bool, bf16: bool | None = None) -> torch.dtype | None:
    """Mixed precision's dtype: on CUDA only, bf16 where the card has it, else fp16."""
    if not enabled or device.type != "cuda":
        return None
    if bf16 is None:
        bf16 = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16 else torch.float16
