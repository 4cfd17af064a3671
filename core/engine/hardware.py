"""What this machine computes natively, and the mixed precision a run should use on it.

bf16 autocast is only fast where the hardware has bf16 arithmetic: a CUDA GPU of compute
capability 8.0 or newer, an x86 CPU with AVX512_BF16 or AMX, an Arm CPU with the BF16
extension. Elsewhere PyTorch emulates it, and a 2-core AVX2 CPU trained MiniLM about 8x
*slower* in bf16 than in fp32 (benchmarks/RESULTS.md). ``mixed_precision: auto`` therefore
picks per machine, and an explicit choice the hardware cannot honour is refused or
warned about with that cost named.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from shopmtl.core.config import ConfigError

Precision = Literal["no", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "no", "bf16", "fp16")

# CPU flags (Linux /proc/cpuinfo) that mean bf16 matrix arithmetic in hardware.
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX-512 / AMX; Arm "bf16" feature
# The flags worth recording beside a figure: they decide which kernels run.
REPORTED_CPU_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_bf16",
    "amx_bf16",
    "amx_tile",
    "bf16",
    "asimd",
    "sve",
)
EMULATED_BF16_COST = (
    "bf16 is emulated on this CPU (no AVX512_BF16, AMX or Arm BF16): measured about 8x slower than fp32 "
    "for MiniLM training on a 2-core AVX2 CPU (benchmarks/RESULTS.md)"
)


class PrecisionError(ConfigError):
    """The requested precision cannot run on this hardware; the message names what can."""


@dataclass(frozen=True)
class Hardware:
    """The compute a run sees: the accelerator, if any, and the CPU."""

    device: str  # "cuda" or "cpu"
    cpu_model: str
    cpu_flags: tuple[str, ...]  # the REPORTED_CPU_FLAGS this CPU has
    threads: int  # torch's intra-op threads
    gpu_name: str | None = None
    gpu_capability: tuple[int, int] | None = None
    gpu_bf16: bool = False

    @property
    def cpu_native_bf16(self) -> bool:
        """True where the CPU computes bf16 in hardware rather than emulating it."""
        return any(flag in self.cpu_flags for flag in NATIVE_BF16_CPU_FLAGS)

    def describe(self) -> str:
        """One line for a run header: what computes, and its bf16 support."""
        if self.device == "cuda":
            bf16 = "native bf16" if self.gpu_bf16 else "no bf16"
            return f"GPU {self.gpu_name} (compute capability {self.gpu_capability}, {bf16})"
        bf16 = "native bf16" if self.cpu_native_bf16 else "no native bf16"
        flags = ", ".join(self.cpu_flags) or "no SIMD flags read"
        return f"CPU {self.cpu_model} ({self.threads} threads; {flags}; {bf16})"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``environment.json``."""
        data = asdict(self)
        data["cpu_flags"] = list(self.cpu_flags)
        data["gpu_capability"] = list(self.gpu_capability) if self.gpu_capability else None
        data["cpu_native_bf16"] = self.cpu_native_bf16
        return data


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run uses, what was asked for, and why."""

    precision: Precision
    requested: str
    reason: str
    warnings: tuple[str, ...] = field(default=())


def read_cpu_info(path: Path = Path("/proc/cpuinfo")) -> tuple[str, tuple[str, ...]]:
    """The CPU's model name and the :data:`REPORTED_CPU_FLAGS` it has.

    Linux lists flags in /proc/cpuinfo ("flags" on x86, "Features" on Arm). Elsewhere
    nothing is read, so no native bf16 is assumed: fp32 is the safe default there.
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return model, ()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and value.strip():
            model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    return model, tuple(flag for flag in REPORTED_CPU_FLAGS if flag in flags)


def detect_hardware(cpu_info: Path = Path("/proc/cpuinfo")) -> Hardware:
    """The hardware this process runs on (the first GPU if CUDA is available)."""
    model, flags = read_cpu_info(cpu_info)
    threads = torch.get_num_threads()
    if not torch.cuda.is_available():
        return Hardware(device="cpu", cpu_model=model, cpu_flags=flags, threads=threads)
    index = torch.cuda.current_device()
    return Hardware(
        device="cuda",
        cpu_model=model,
        cpu_flags=flags,
        threads=threads,
        gpu_name=torch.cuda.get_device_name(index),
        gpu_capability=tuple(torch.cuda.get_device_capability(index)),
        gpu_bf16=bool(torch.cuda.is_bf16_supported()),
    )


def resolve_precision(
    requested: str, hardware: Hardware, setting: str = "training.mixed_precision"
) -> PrecisionChoice:
    """The precision to run in for ``requested`` (``auto``, ``no``, ``bf16``, ``fp16``) on ``hardware``.

    ``auto``: bf16 where the hardware computes it natively, fp16 on a CUDA GPU without
    bf16, fp32 (``no``) otherwise. An explicit value is kept; one the hardware cannot run
    at all raises :class:`PrecisionError`, and bf16 on a CPU that emulates it is kept with
    a warning naming the measured cost.
    """
    if requested not in PRECISIONS:
        raise PrecisionError(
            f"{setting}={requested!r} is not a precision: use one of {', '.join(PRECISIONS)}"
        )
    if hardware.device == "cuda":
        return _resolve_on_gpu(requested, hardware, setting)
    return _resolve_on_cpu(requested, hardware, setting)


def _resolve_on_gpu(requested: str, hardware: Hardware, setting: str) -> PrecisionChoice:
    gpu = f"GPU {hardware.gpu_name} (compute capability {hardware.gpu_capability})"
    if requested == "auto":
        if hardware.gpu_bf16:
            return PrecisionChoice("bf16", requested, f"auto: {gpu} computes bf16 natively")
        return PrecisionChoice(
            "fp16", requested, f"auto: {gpu} has no bf16; fp16 with loss scaling"
        )
    if requested == "bf16" and not hardware.gpu_bf16:
        raise PrecisionError(
            f"{setting}=bf16: the {gpu} has no bf16 arithmetic (it needs compute capability 8.0+); "
            f"use {setting}=fp16 (or auto, which picks it here) or no for fp32"
        )
    return PrecisionChoice(requested, requested, f"{setting}={requested} as configured")  # type: ignore[arg-type]


def _resolve_on_cpu(requested: str, hardware: Hardware, setting: str) -> PrecisionChoice:
    flags = ", ".join(hardware.cpu_flags) or "none read"
    if requested == "fp16":
        raise PrecisionError(
            f"{setting}=fp16 needs a CUDA GPU, and this machine runs on its CPU ({hardware.cpu_model}). "
            f"Use {setting}=auto (picks bf16 where the CPU has it, else fp32), bf16 or no"
        )
    if requested == "auto":
        if hardware.cpu_native_bf16:
            return PrecisionChoice(
                "bf16", requested, f"auto: this CPU computes bf16 natively ({flags})"
            )
        return PrecisionChoice(
            "no",
            requested,
            f"auto: fp32, because {EMULATED_BF16_COST.replace('bf16 is emulated', 'bf16 would be emulated')}",
        )
    if requested == "bf16" and not hardware.cpu_native_bf16:
        warning = (
            f"{setting}=bf16 on {hardware.cpu_model}: {EMULATED_BF16_COST}. "
            f"Set {setting}=auto or no to train in fp32"
        )
        return PrecisionChoice(
            "bf16", requested, f"{setting}=bf16 as configured (emulated)", (warning,)
        )
    return PrecisionChoice(requested, requested, f"{setting}={requested} as configured")  # type: ignore[arg-type]


def precision_for_this_machine(
    requested: str, setting: str = "training.mixed_precision"
) -> PrecisionChoice:
    """:func:`resolve_precision` on :func:`detect_hardware`."""
    return resolve_precision(requested, detect_hardware(), setting)


def cpu_threads_env() -> dict[str, str]:
    """Thread-count environment variables that change CPU speed, for the record."""
    return {
        k: os.environ[k]
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
        if k in os.environ
    }
