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


def engines_for(run, fp32_run, int8_run) -> dict[str, Callable]:
    from shopmtl.core.deploy.fp32 import Fp32Runtime
    from shopmtl.core.engine.evaluate import Scorer
    from shopmtl.core.engine.predict import predict_frame
    from shopmtl.core.engine.runtime import fresh_accelerator

    size = run.config.training.eval_batch_size
    bf16 = fresh_accelerator(mixed_precision="bf16")
    model = run.model.cpu().eval()
    return {  # a new Scorer per call: every text is encoded in every round
        "PyTorch float32": lambda f: predict_frame(
            run, TASK, f, scorer=Scorer(Fp32Runtime(), model, run.bank, size)
        ),
        "PyTorch bf16 autocast": lambda f: predict_frame(
            run, TASK, f, scorer=Scorer(bf16, model, run.bank, size)
        ),
        "ONNX float32, optimised": lambda f: predict_frame(fp32_run, TASK, f),
        "ONNX int8": lambda f: predict_frame(int8_run, TASK, f),
    }


def quality(run, fp32_dir: Path, int8_dir: Path) -> list[dict]:
    """Per task: the primary metric from PyTorch, the float32 export and the int8 export."""
    from shopmtl.core.deploy.onnx_engine import load_onnx_model
    from shopmtl.core.deploy.onnx_quality import rebuilt_tasks, split_metrics

    checked = json.loads((int8_dir / "onnx" / "manifest.json").read_text())
    fp32 = split_metrics(run, load_onnx_model(fp32_dir), rebuilt_tasks(run))
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


def report(run_dir, frame, checks, speeds, quality_rows, bf16_native: bool) -> None:
    import onnxruntime
    import torch

    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"# onnxruntime vs PyTorch, {now:%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {machine()}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"onnxruntime {onnxruntime.__version__}; run: {run_dir}; {len(frame)} {TASK} rows; "
        f"bf16 native: {'yes' if bf16_native else 'no'}"
    )
    print(f"float32 export: {checks['fp32'].summary()}")
    print(f"int8 export: {checks['int8'].summary()}\n")
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

    from shopmtl.core.deploy.export_onnx import export_onnx
    from shopmtl.core.deploy.onnx_engine import load_onnx_run
    from shopmtl.core.engine.hardware import detect_hardware, resolve_precision
    from shopmtl.core.engine.predict import load_run
    from shopmtl.plugins.builtin import BUILTIN_PLUGINS
    from shopmtl.registry.manager import load_plugins

    tasks = load_plugins(BUILTIN_PLUGINS, only=[]).tasks
    run = load_run(run_dir, tasks, precision="no")
    bf16_native = resolve_precision("auto", detect_hardware()).precision == "bf16"
    with tempfile.TemporaryDirectory() as folder:
        fp32_dir, int8_dir = Path(folder) / "fp32", Path(folder) / "int8"
        checks = {"fp32": export_onnx(run, fp32_dir)}
        # the limit is the report's business here: write the int8 export whatever it changes
        checks["int8"] = export_onnx(run, int8_dir, quantize="int8", max_metric_change=math.inf)
        engines = engines_for(run, load_onnx_run(fp32_dir, tasks), load_onnx_run(int8_dir, tasks))
        speeds = rates(engines, frame, args.repeats)
        quality_rows = [] if args.no_quality else quality(run, fp32_dir, int8_dir)
    report(run_dir, frame, checks, speeds, quality_rows, bf16_native)


if __name__ == "__main__":
    main()
