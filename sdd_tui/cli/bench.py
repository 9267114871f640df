"""`sdd-tui bench`: the project's training loop against the standard recipe, on this machine."""

from __future__ import annotations

import json
from typing import Optional

import typer

from sdd_tui.cli.options import user_errors
from sdd_tui.core.errors import SddError
from sdd_tui.core.format import duration
from sdd_tui.core.registry import MODELS, choices


def _cpu(us: float | None) -> str:
    return f", {us:,.0f} us CPU/sample" if us is not None else ""


def _report(result) -> str:
    preset = result.preset or "no matching preset, the paper's ResNet schedule"
    return "\n".join([
        f"bench: {result.model} (width {result.width:g}) on {result.data}-shaped synthetic data, "
        f"batch {result.batch_size}, augment {'on' if result.augment else 'off'}",
        f"device: {result.device} ({result.device_name}), torch {result.torch}, {result.threads} threads"
        f"{' (' + result.omp_env + ')' if result.omp_env else ''}; "
        f"median of {result.chunks} chunks, {result.batches} timed batches after {result.warmup_batches} warm-up",
        f"  project loop : {result.project_samples_per_s:>10,.0f} samples/s{_cpu(result.project_cpu_us_per_sample)}"
        + ("  (torch.compile)" if result.compile else ""),
        f"  reference    : {result.reference_samples_per_s:>10,.0f} samples/s{_cpu(result.reference_cpu_us_per_sample)}"
        f"  ({'torchvision MNIST' if result.data == 'mnist' else 'CIFAR-style Dataset'}: PIL + ToTensor/Normalize, "
        f"DataLoader shuffle, 2 workers, eager fp32)",
        f"  ratio        : {result.ratio:>10.1f}x",
        f"full run ({preset}: {result.rounds + 1} rounds x {result.epochs} epochs x {result.train_samples:,} "
        f"samples, evaluation not counted): project {duration(result.project_full_run_s)}, "
        f"reference {duration(result.reference_full_run_s)}",
    ])


@user_errors
def bench(
    model: str = typer.Option("lenet300_100", "--model", "-m", help=choices(MODELS)),
    data: str = typer.Option("mnist", "--data", help="Shape of the synthetic data: mnist | cifar10 | cifar100"),
    device: str = typer.Option("auto", "--device", "-d", help="auto | cpu | cuda | cuda:N"),
    batches: int = typer.Option(200, "--batches", "-n", help="Timed batches on each side (after warm-up)"),
    batch_size: int = typer.Option(128, "--batch-size", "-b", help="Training batch size"),
    width: float = typer.Option(1.0, "--width", help="Model width multiplier"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch, both sides "
                                          "(default: torch's choice)"),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the project's model first"),
    preset: Optional[str] = typer.Option(None, "--preset", help="Preset whose recipe and schedule to use "
                                         "(default: the one with this model and data)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Samples/s of the training loop against the standard recipe, and a full run's wall time here."""
    from sdd_tui.core.engine.bench import run_bench
    from sdd_tui.core.engine.runtime_context import run_context

    if threads is not None and threads < 1:
        raise SddError(f"--threads {threads}: use 1 or more")
    with run_context(threads=threads):
        result = run_bench(model, data, device, batches, batch_size, width, compile_model, preset=preset)
    typer.echo(json.dumps(result.to_dict()) if as_json else _report(result))
