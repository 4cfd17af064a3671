"""``benchmarks/throughput.py``'s command line (see its docstring for what each variant is)."""

from __future__ import annotations

import argparse
from pathlib import Path


def parse_args(description: str) -> argparse.Namespace:
    """The command line, with ``--quick``'s sizes applied."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--examples-per-task",
        type=int,
        default=256,
        help="training rows of each task (default 256)",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=128,
        help="token cap per text, and the Trainer's fixed padding",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="joint steps (default: one epoch, 4 * examples / batch); the Trainer runs share them out",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in every variant (default 1: robust beside other work; 0 = all cores)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "no", "bf16", "fp16"),
        default="auto",
        help="mixed precision of every variant (default auto: bf16 where this CPU computes it natively, "
        "else no = fp32); the FLOP/s ratio divides by this dtype's matmul peak",
    )
    parser.add_argument(
        "--predict-rows",
        type=int,
        default=None,
        help="test rows per task to predict (default: examples)",
    )
    parser.add_argument(
        "--scale", default="1,4,16", help="row multipliers of the scale runs ('' to skip)"
    )
    parser.add_argument(
        "--scale-base", type=int, default=None, help="rows per task at 1x (default: examples / 8)"
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated variants to leave out (e.g. trainer-fixed,scale)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run shopmtl and plain this many times, interleaved; keep the best",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a ~1.5 minute check that every variant runs: tiny sizes (8 steps of 8), no scale or CLI "
        "runs; its ratios are noise",
    )
    parser.add_argument("--json", type=Path, help="write every measurement and the table here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch folder (run dirs, worker logs)"
    )
    args = parser.parse_args()
    if args.quick:
        args.examples_per_task, args.batch_size = 32, 8
        args.steps = args.steps or 8
        args.scale = ""
        args.predict_rows = args.predict_rows or 32
    return args
