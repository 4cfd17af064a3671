"""onnxruntime against PyTorch on CPU: rows/s of ``predict_frame`` on the same rows of one run,
and each task's primary metric on the run's test split from each engine.

    python benchmarks/onnx_vs_torch.py [--run RUN_DIR] [--encoder minilm|tiny] [--rows 2048]
                                       [--repeats 5] [--no-quality]

Exports the run twice into a temporary folder, as ``shopmtl export --format onnx`` does:
the optimised float32 encoder and ``--quantize int8``. Then predicts the same ``--rows``
price_bin rows four ways, the engines interleaved in each of ``--repeats`` rounds (a
shared machine's load then hits them alike), each from a cold text cache: PyTorch float32,
PyTorch bf16 autocast (native or not: the table says which), and ``--engine onnxruntime``
on each export -- the run loaded as ``shopmtl predict`` loads an export, with no PyTorch
model. All in one worker thread, as ``shopmtl serve`` predicts.

The quality check: every task of the run scored on its whole test split (float32
arithmetic, the run's calibration) by PyTorch and by each export; the int8 row is the
export's own check (the same numbers ``--quantize int8`` records in its manifest).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from deploy_common import TASK, add_run_options, ensure_run, machine, test_rows


def timed(predict: Callable[[pd.DataFrame], object], frame: pd.DataFrame) -> float:
    started = time.perf_counter()
    predict(frame)
    return time.perf_counter() - started


def rates(engines: dict[str, Callable], frame: pd.DataFrame, repeats: int) -> dict[str, list]:
    """rows/s of each engine in each round, the engines interleaved within a round."""
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    with concurrent.futures.ThreadPoolExecutor(1) as worker:
        for predict in engines.values():
            worker.submit(predict, frame.head(64)).result()  # warm-up
        for _ in range(repeats):
            for name, predict in engines.items():
                seconds[name].append(worker.submit(timed, predict, frame).result())
    return {name: [len(frame) / s for s in values] for name, values in seconds.items()}


def engine(onnx_run) -> Callable[[pd.DataFrame], object]:
    """``predict_frame`` on an export loaded as ``shopmtl predict --engine onnxruntime`` does."""
    from shopmtl.core import api

    return lambda f: api.predict_frame(onnx_run, TASK, f)


def manifest_summary(fp32_dir: Path, int8_dir: Path) -> dict[str, str]:
    """What each export's check found, in words, from its manifest."""
    lines = {}
    for name, folder in (("float32", fp32_dir), ("int8", int8_dir)):
        manifest = json.loads((folder / "onnx" / "manifest.json").read_text())
        line = (
            f"max abs difference to PyTorch on the test rows {manifest['max_abs_difference']:.2e}"
        )
        fused = manifest["encoder"]["fused_operators"]
        line += "; fused: " + ", ".join(f"{op} x{n}" for op, n in fused.items())
        lines[name] = line
    return lines


def quality(fp32_dir: Path, int8_dir: Path, tasks) -> list[dict]:
    """Per task: the primary metric from PyTorch, the float32 export and the int8 export."""
    from shopmtl.core import api

    fp32_run = api.load_onnx_run(fp32_dir, tasks)
    fp32 = {
        name: api.to_plain(dict(fp32_run.specs[name].metrics(batch)))
        for name, batch in api.score_split(fp32_run, "test").items()
    }
    checked = json.loads((int8_dir / "onnx" / "manifest.json").read_text())
    rows = []
    for task, entry in checked["test_primary_metrics"].items():
        optimised = fp32[task].get(entry["metric"])
        rows.append(
            {
                "task": task,
                "metric": entry["metric"],
                "torch": entry["torch"],
                "fp32": optimised,
                "int8": entry["onnx"],
                "fp32_change": None if optimised is None else optimised - entry["torch"],
                "int8_change": entry["change"],
            }
        )
    return rows


def number(value, digits: int = 4, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def report(run_dir, frame, summary, speeds, quality_rows, bf16_native: bool) -> None:
    import onnxruntime
    import torch

    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"# onnxruntime vs PyTorch, {now:%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {machine()}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"onnxruntime {onnxruntime.__version__}; run: {run_dir}; {len(frame)} {TASK} rows; "
        f"bf16 native: {'yes' if bf16_native else 'no'}"
    )
    print(f"float32 export: {summary['float32']}")
    print(f"int8 export: {summary['int8']}\n")
    best = {name: max(values) for name, values in speeds.items()}
    median = {name: statistics.median(values) for name, values in speeds.items()}
    print("| engine | rows/s best | rows/s median | ÷ PyTorch fp32 | ÷ PyTorch bf16 |")
    print("|---|---|---|---|---|")
    for name in speeds:
        print(
            f"| {name} | {best[name]:.0f} | {median[name]:.0f} | "
            f"{best[name] / best['PyTorch float32']:.2f} | "
            f"{best[name] / best['PyTorch bf16 autocast']:.2f} |"
        )
    print("\n(ratios of the best rounds; every round's rows/s:)")
    for name, values in speeds.items():
        print(f"  {name}: {', '.join(f'{v:.0f}' for v in values)}")
    if quality_rows:
        print("\n| task | primary metric (test) | PyTorch fp32 | ONNX fp32 | ONNX int8 |")
        print("|---|---|---|---|---|")
        for row in quality_rows:
            print(
                f"| {row['task']} | {row['metric']} | {number(row['torch'])} | "
                f"{number(row['fp32'])} ({number(row['fp32_change'], sign=True)}) | "
                f"{number(row['int8'])} ({number(row['int8_change'], sign=True)}) |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_options(parser)
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--no-quality", action="store_true", help="skip the per-task metrics on the test split"
    )
    args = parser.parse_args()
    run_dir = ensure_run(args)
    frame = test_rows(run_dir, args.rows)

    from shopmtl.core import api

    tasks = api.load_plugins(only=[]).tasks
    run = api.load_run(run_dir, tasks, precision="no")
    bf16_run = api.load_run(run_dir, tasks, precision="bf16")  # autocast, native or not
    bf16_native = api.resolve_precision("auto", api.detect_hardware()).precision == "bf16"
    with tempfile.TemporaryDirectory() as folder:
        fp32_dir, int8_dir = Path(folder) / "fp32", Path(folder) / "int8"
        checks = {"fp32": api.export_onnx(run, fp32_dir)}
        # the limit is the report's business here: write the int8 export whatever it changes
        checks["int8"] = api.export_onnx(run, int8_dir, quantize="int8", max_metric_change=math.inf)
        engines = {  # a new Scorer per call: every text is encoded in every round
            "PyTorch float32": lambda f: api.predict_frame(run, TASK, f, scorer=api.scorer(run)),
            "PyTorch bf16 autocast": lambda f: api.predict_frame(
                bf16_run, TASK, f, scorer=api.scorer(bf16_run)
            ),
            "ONNX float32, optimised": engine(api.load_onnx_run(fp32_dir, tasks)),
            "ONNX int8": engine(api.load_onnx_run(int8_dir, tasks)),
        }
        speeds = rates(engines, frame, args.repeats)
        quality_rows = [] if args.no_quality else quality(fp32_dir, int8_dir, tasks)
        summary = manifest_summary(fp32_dir, int8_dir)
    report(run_dir, frame, summary, speeds, quality_rows, bf16_native)


if __name__ == "__main__":
    main()
