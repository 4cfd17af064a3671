"""The benchmark scripts' precision: resolved as ``training.mixed_precision`` is, per CPU, and the matmul-peak
probe measures only the dtypes a run uses (never bf16 for an fp32 run: emulated, it took over 12 minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from shopmtl.core.engine.hardware import Hardware, PrecisionError

sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent / "benchmarks")
)  # the scripts' sibling modules
from throughput_common import DTYPE_NAMES, bench_precision, trainer_best_dtype  # noqa: E402
from throughput_workers import worker_matmul  # noqa: E402

AVX2_CPU = Hardware(device="cpu", cpu_model="AMD EPYC 7B12", cpu_flags=("avx2",), threads=1)
AVX512_BF16_CPU = Hardware(
    device="cpu", cpu_model="AMD EPYC 9R14", cpu_flags=("avx2", "avx512f", "avx512_bf16"), threads=1
)


@pytest.mark.parametrize(
    ("hardware", "expected", "dtype"), [(AVX2_CPU, "no", "fp32"), (AVX512_BF16_CPU, "bf16", "bf16")]
)
def test_auto_is_fp32_without_native_bf16_and_bf16_with_it(hardware, expected, dtype):
    choice = bench_precision("auto", hardware)
    assert choice.precision == expected and DTYPE_NAMES[choice.precision] == dtype
    assert trainer_best_dtype(choice.precision) == dtype


def test_explicit_choices_are_kept_warned_or_refused_as_in_training():
    assert bench_precision("no", AVX512_BF16_CPU).precision == "no"
    emulated = bench_precision("bf16", AVX2_CPU)
    assert emulated.precision == "bf16" and "8x slower" in emulated.warnings[0]
    assert "--precision" in emulated.warnings[0]  # named as the scripts' option, not the config key
    with pytest.raises(PrecisionError, match="--precision=fp16"):
        bench_precision("fp16", AVX2_CPU)


@pytest.mark.parametrize(("precision", "peaks"), [("no", {"fp32"}), ("bf16", {"bf16", "fp32"})])
def test_the_matmul_probe_measures_only_the_dtypes_the_run_uses(precision, peaks):
    out = worker_matmul(
        {"threads": 1, "matmul_size": 16, "matmul_repeats": 1, "precision": precision}
    )
    assert {k for k in out["peak_flops"] if not k.endswith("_per_cpu_s")} == peaks
