"""What the throughput benchmark's parent and its worker subprocesses share: clocks, the
peak-RSS reader, the precision a run uses, and the config and data every variant trains on."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

TASKS: tuple[str, ...] = ("sales", "price_bin", "user_profile", "recommend")
REPO = Path(__file__).resolve().parent.parent


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM), MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def now() -> tuple[float, float]:
    """(wall clock, this process's CPU time): with one torch thread the CPU time is the work
    done, whatever else runs on the machine; the wall clock also counts waiting for a core."""
    return time.perf_counter(), time.process_time()


# A resolved precision (``training.mixed_precision``) -> the dtype's name in tables and torch's dtype.
DTYPE_NAMES = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}
TORCH_DTYPES = {"no": "float32", "bf16": "bfloat16", "fp16": "float16"}


def bench_hardware(threads: int | None = None):
    """The CPU these benchmarks measure on, as :func:`shopmtl.core.api.detect_hardware` sees it, with
    ``threads`` torch threads. Every measured variant computes on the CPU (the plain loop's and the
    Trainer's ``cpu=True``, ``autocast("cpu")``, the matmul probe), so a GPU, if any, is left out."""
    from shopmtl.core import api

    found = api.detect_hardware()
    return dataclasses.replace(
        found,
        device="cpu",
        gpu_name=None,
        gpu_capability=None,
        gpu_bf16=False,
        threads=threads or found.threads,
    )


def bench_precision(requested: str, hardware):
    """The precision a benchmark runs in for ``--precision`` ``requested`` (auto, no, bf16, fp16) on ``hardware``:
    shopmtl's own :func:`~shopmtl.core.api.resolve_precision` -- auto is bf16 only where the CPU computes
    it natively, else fp32 ("no"); bf16 on a CPU that emulates it is kept, with a warning; fp16 on a CPU is
    refused (``PrecisionError``)."""
    from shopmtl.core import api

    return api.resolve_precision(requested, hardware, setting="--precision")


def trainer_best_dtype(precision: str) -> str:
    """The best-settings Trainer runs' dtype for the run's resolved precision: bf16 where the run is bf16,
    fp32 otherwise (those runs, like every variant, compute on the CPU)."""
    return "bf16" if precision == "bf16" else "fp32"


def torch_dtype(precision: str):
    """torch's dtype for a resolved precision ("no" = fp32)."""
    import torch

    return getattr(torch, TORCH_DTYPES[precision])


def matmul_peak(dtype: Any, size: int, repeats: int) -> tuple[float, float]:
    """FLOP/s of the best of ``repeats`` square ``size`` matmuls in ``dtype``: per wall second,
    and per CPU-second of all threads."""
    import torch

    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)  # one-off allocation and kernel choice
    best = best_cpu = float("inf")
    for _ in range(repeats):
        start = now()
        torch.mm(a, b)
        end = now()
        best, best_cpu = min(best, end[0] - start[0]), min(best_cpu, end[1] - start[1])
    return 2 * size**3 / best, 2 * size**3 / best_cpu


def loop_seconds(stamps: list[tuple[float, float]], which: int = 0) -> float:
    """Steady loop time (0: wall, 1: CPU) from per-step forward-end stamps: (last - first) * n / (n - 1)."""
    if len(stamps) < 2:
        return float("nan")
    return (stamps[-1][which] - stamps[0][which]) * len(stamps) / (len(stamps) - 1)


def shopmtl_overrides(
    plan: dict[str, Any], examples: int, steps: int, output_dir: str, timed: bool
) -> list[str]:
    """The default config's overrides for a benchmark run of ``examples`` rows per task."""
    overrides = [
        f"output_dir={output_dir}",
        f"seed={plan['seed']}",
        f"encoder.max_length={plan['max_length']}",
        f"training.batch_size={plan['batch_size']}",
        f"training.max_steps={steps}",
        f"training.eval_every={steps}",
        f"training.log_every={steps}",
        f"training.mixed_precision={plan['precision']}",
        # Throughput, not quality: evaluate once, at the end, on a few rows (the run
        # cannot skip its final evaluation); recommend then ranks only the positives
        # among those rows.
    ]
    for task in TASKS:
        overrides += [
            f"tasks.{task}.max_train_examples={examples}",
            f"tasks.{task}.max_eval_examples={plan['eval_examples']}",
        ]
    if timed:
        overrides.append("training.loss_weighting=bench_timed_static")
    return overrides


def task_frames(plan: dict[str, Any], examples: int):
    """The train frames every variant trains on: the plugins' datasets, subsampled as shopmtl does."""
    from shopmtl.core import api

    config = api.load_config(
        None, shopmtl_overrides(plan, examples, 1, "/nonexistent", timed=False)
    )
    plugins = api.load_plugins()
    return config, plugins
