"""Hardware-aware precision: ``mixed_precision: auto`` and the refusals and warnings around it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from shopmtl.core.engine.environment import environment_record, source_commit
from shopmtl.core.engine.hardware import Hardware, PrecisionError, read_cpu_info, resolve_precision

AVX2_LAPTOP = Hardware(
    device="cpu", cpu_model="Intel Core i7-8565U", cpu_flags=("avx2",), threads=2
)
BF16_SERVER = Hardware(
    device="cpu", cpu_model="AMD EPYC 9R14", cpu_flags=("avx2", "avx512f", "avx512_bf16"), threads=2
)
AMX_SERVER = Hardware(
    device="cpu", cpu_model="Intel Xeon 8480", cpu_flags=("avx2", "amx_bf16"), threads=8
)
GRAVITON3 = Hardware(
    device="cpu", cpu_model="Neoverse-V1", cpu_flags=("asimd", "bf16", "sve"), threads=4
)
A100 = Hardware(
    device="cuda",
    cpu_model="x",
    cpu_flags=(),
    threads=8,
    gpu_name="NVIDIA A100",
    gpu_capability=(8, 0),
    gpu_bf16=True,
)
T4 = Hardware(
    device="cuda",
    cpu_model="x",
    cpu_flags=(),
    threads=8,
    gpu_name="Tesla T4",
    gpu_capability=(7, 5),
    gpu_bf16=False,
)


@pytest.mark.parametrize(
    ("hardware", "expected"),
    [
        (AVX2_LAPTOP, "no"),
        (BF16_SERVER, "bf16"),
        (AMX_SERVER, "bf16"),
        (GRAVITON3, "bf16"),
        (A100, "bf16"),
        (T4, "fp16"),
    ],
)
def test_auto_picks_what_the_hardware_computes_natively(hardware, expected):
    choice = resolve_precision("auto", hardware)
    assert choice.precision == expected
    assert choice.requested == "auto"
    assert choice.reason.startswith("auto:")
    assert not choice.warnings


def test_auto_on_a_cpu_without_bf16_says_why_it_chose_fp32():
    reason = resolve_precision("auto", AVX2_LAPTOP).reason
    assert "fp32" in reason and "8x slower" in reason


def test_explicit_bf16_on_an_emulating_cpu_is_kept_but_warned_with_the_measured_cost():
    choice = resolve_precision("bf16", AVX2_LAPTOP)
    assert choice.precision == "bf16"
    (warning,) = choice.warnings
    assert "training.mixed_precision=bf16" in warning
    assert "Intel Core i7-8565U" in warning
    assert "8x slower than fp32" in warning
    assert "auto or no" in warning


@pytest.mark.parametrize("hardware", [AVX2_LAPTOP, BF16_SERVER])
def test_fp16_without_a_gpu_is_refused_naming_the_setting_and_the_alternatives(hardware):
    with pytest.raises(
        PrecisionError, match=r"training.mixed_precision=fp16 needs a CUDA GPU.*auto.*bf16 or no"
    ):
        resolve_precision("fp16", hardware)


def test_bf16_on_a_gpu_without_it_is_refused_naming_the_gpu():
    with pytest.raises(
        PrecisionError, match=r"mixed_precision=bf16: the GPU Tesla T4.*\(7, 5\).*fp16"
    ):
        resolve_precision("bf16", T4)


def test_explicit_choices_the_hardware_supports_are_kept_silently():
    assert resolve_precision("no", BF16_SERVER).precision == "no"
    assert resolve_precision("bf16", BF16_SERVER).warnings == ()
    assert resolve_precision("fp16", T4).precision == "fp16"


def test_the_setting_named_in_messages_is_the_callers():
    with pytest.raises(PrecisionError, match="--precision=fp16"):
        resolve_precision("fp16", AVX2_LAPTOP, setting="--precision")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n"
    )
    model, flags = read_cpu_info(cpuinfo)
    assert model == "AMD EPYC 9R14"
    assert flags == ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def test_arm_features_line_is_read(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16\nCPU part\t: 0xd40\n")
    _, flags = read_cpu_info(cpuinfo)
    assert "bf16" in flags


def test_without_cpuinfo_no_native_bf16_is_assumed(tmp_path: Path):
    _, flags = read_cpu_info(tmp_path / "absent")
    hardware = Hardware(device="cpu", cpu_model="m", cpu_flags=flags, threads=1)
    assert resolve_precision("auto", hardware).precision == "no"


def test_environment_record_holds_precision_hardware_versions_and_data_hash(tmp_path: Path):
    data = tmp_path / "tx.csv"
    data.write_bytes(b"a,b\n1,2\n")
    record = environment_record(
        resolve_precision("auto", AVX2_LAPTOP), AVX2_LAPTOP, [str(data), str(tmp_path / "gone")]
    )
    json.dumps(record)  # plain data
    assert record["precision"] == "no" and record["precision_requested"] == "auto"
    assert (
        record["hardware"]["cpu_flags"] == ["avx2"]
        and record["hardware"]["cpu_native_bf16"] is False
    )
    assert record["hardware"]["threads"] == 2
    assert set(record["versions"]) >= {"python", "torch", "transformers", "accelerate", "shopmtl"}
    assert record["versions"]["torch"]
    assert record["data"][0] == {
        "path": str(data),
        "bytes": 8,
        "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest(),
    }
    assert record["data"][1] == {"path": str(tmp_path / "gone"), "bytes": None, "sha256": None}


def test_source_commit_of_a_checkout_and_of_an_installed_copy(tmp_path: Path):
    assert source_commit(tmp_path) is None  # not a checkout: nothing to record
    record = source_commit(Path(__file__).resolve().parents[3])  # the tests run from a git checkout
    assert record is not None and len(record["commit"]) == 40 and isinstance(record["dirty"], bool)


def test_a_run_records_its_environment_and_phase_timings(toy_run):
    environment = json.loads((toy_run.output_dir / "environment.json").read_text())
    assert environment["precision_requested"] == "auto"  # the smoke config leaves it to the machine
    assert environment["precision"] in ("bf16", "no")
    assert environment["precision"] == (
        "bf16" if environment["hardware"]["cpu_native_bf16"] else "no"
    )
    assert environment["hardware"]["device"] == "cpu"
    assert environment["versions"]["shopmtl"]
    assert environment["data"] == []  # the toy tasks make their rows, reading no file
    timings = json.loads((toy_run.output_dir / "metrics.json").read_text())["timings"]
    assert set(timings) == {
        "setup_s",
        "training_s",
        "validation_s",
        "final_scoring_s",
        "baselines_s",
        "total_s",
    }
    assert all(value >= 0 for value in timings.values())
    assert timings["total_s"] >= timings["training_s"] + timings["validation_s"]


def test_source_commit_finds_the_checkout_this_package_runs_from():
    """BUG before: after the move into core/engine/, the default looked one folder too low and found no commit."""
    found = source_commit()
    assert found is not None and found == source_commit(Path(__file__).resolve().parents[3])
