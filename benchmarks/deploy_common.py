"""Shared by the deploy benchmarks (serve.py, onnx_vs_torch.py, predict_memory.py): a small
trained price_bin run, and rows to predict.

``--run RUN_DIR`` uses a run you have; otherwise one is trained into
``benchmarks/runs/deploy-<encoder>`` (kept for the next benchmark): price_bin with the smoke
config, 30 steps, on the pretrained MiniLM (``--encoder minilm``: realistic timings) or the
tiny random encoder (``--encoder tiny``: seconds, for memory and smoke checks).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TASK = "price_bin"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run", type=Path, help="a trained run with a price_bin head (default: train one)"
    )
    parser.add_argument("--encoder", choices=["minilm", "tiny"], default="minilm")


def ensure_run(args: argparse.Namespace) -> Path:
    """``--run``, or the benchmark run of ``--encoder``, trained on first use."""
    if args.run:
        return args.run
    run = REPO / "benchmarks" / "runs" / f"deploy-{args.encoder}"
    if not (run / "model" / "encoder.safetensors").is_file():
        overrides = ["training.max_steps=30", "training.eval_every=30", f"output_dir={run}"]
        if args.encoder == "minilm":
            overrides += ["encoder.random_init=false", "encoder.max_length=64"]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shopmtl.core.cli",
                "train",
                str(REPO / "examples/configs/smoke.yaml"),
                "--task",
                TASK,
                "--overwrite",
                *overrides,
            ],
            check=True,
        )
    return run


def test_rows(run: Path, n: int) -> pd.DataFrame:
    """``n`` price_bin input rows (the run's test split, repeated with numbered texts past its end)."""
    from shopmtl.core import api

    spec = api.load_plugins(only=[]).tasks[TASK]
    frame = api.build_task_data(spec, api.read_run_config(run))["test"][
        ["stock_code", "description"]
    ]
    copies = -(-n // len(frame))
    parts = [
        frame.assign(description=frame["description"] + (f" {k}" if k else ""))
        for k in range(copies)
    ]
    return pd.concat(parts, ignore_index=True).head(n)


def machine() -> str:
    """The CPU model, its core count and whether it has AVX-512 BF16."""
    import os

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    name = next(
        (
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return (
        f"{name}, {os.cpu_count()} cores, avx512_bf16: {'yes' if 'avx512_bf16' in info else 'no'}"
    )
