"""onnxruntime against PyTorch on CPU: rows/s of ``predict_frame`` on the same rows of one run.

    python benchmarks/onnx_vs_torch.py [--run RUN_DIR] [--encoder minilm|tiny] [--rows 2048]

Exports the run to ONNX (a temporary folder; the export checks the graphs against PyTorch
on the run's test rows), then predicts the same ``--rows`` price_bin rows three ways, each
best of ``--repeats``: PyTorch as ``shopmtl predict`` runs it (the run's precision: bf16
autocast for the default), PyTorch in float32, and onnxruntime (float32). All in one worker
thread, as ``shopmtl serve`` predicts.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import tempfile
import time
from pathlib import Path

from deploy_common import TASK, add_run_options, ensure_run, machine, test_rows


def best_rate(predict, frame, repeats: int) -> float:
    predict(frame.head(64))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        predict(frame)
        best = min(best, time.perf_counter() - started)
    return len(frame) / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_options(parser)
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run_dir = ensure_run(args)
    frame = test_rows(run_dir, args.rows)

    from shopmtl.core import api

    run = api.load_run(run_dir, api.load_plugins(only=[]).tasks)
    with tempfile.TemporaryDirectory() as folder:
        export = Path(folder) / "onnx"
        difference = api.export_onnx(run, export)
        onnx = api.load_onnx(export)
        engines = {
            f"PyTorch ({run.config.training.mixed_precision})": lambda f: api.predict_frame(
                run, TASK, f
            ),
            "PyTorch (float32)": lambda f: api.predict_frame(
                run, TASK, f, scorer=api.scorer(run, "fp32")
            ),
            "onnxruntime (float32)": lambda f: api.predict_frame(
                run, TASK, f, scorer=api.scorer(run, "onnxruntime", onnx)
            ),
        }
        with concurrent.futures.ThreadPoolExecutor(1) as worker:
            rates = {
                name: worker.submit(best_rate, predict, frame, args.repeats).result()
                for name, predict in engines.items()
            }
    print(
        f"# onnxruntime vs PyTorch, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"machine: {machine()}; run: {run_dir}; {len(frame)} rows; export max abs difference {difference:.1e}\n"
    )
    print("| engine | rows/s | ÷ PyTorch as predict runs it |")
    print("|---|---|---|")
    reference = next(iter(rates.values()))
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {rate / reference:.2f} |")


if __name__ == "__main__":
    main()
