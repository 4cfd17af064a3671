"""``benchmarks/quality.py``'s command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

HELP_EPILOG = """\
profiles:
  smoke  tiny random encoder (examples/configs/smoke.yaml: 256 train rows per task, capped val/test,
         19 ranking negatives), 8 steps, 1 seed. Checks this script end to end in about 2 minutes on a
         quiet 2-core CPU; its numbers mean nothing.
  cpu    the default run as shipped (core/defaults/default.yaml: all-MiniLM-L6-v2, max_length 64,
         batch 32, bf16 where native, classical priors, its steps (--set training.max_steps=N to
         change them; examples/configs/best.yaml's 1,200), train caps of 20,000 random rows for
         sales and recommend; price_bin and user_profile in full; val and test NOT subsampled:
         TASKS.md's splits, 99 ranking negatives). The joint model and the four single-task models
         with 3 seeds, the other variants with 1 (--variant-seeds 3 for all).
         Measured on this 2-core CPU (AMD EPYC, avx512_bf16), 2026-11-23: two processes side by
         side with --threads 1 (OMP_WAIT_POLICY=PASSIVE), one seed set each, then one --resume
         call for the table: see benchmarks/RESULTS.md for the commands and the wall time.
  full   the same runs, every variant with 3 seeds; meant for a GPU.
"""


def parse_args(
    argv: Sequence[str] | None, profiles: Sequence[str], variants: Sequence[str]
) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parser (for its ``error``) and the parsed arguments."""
    parser = argparse.ArgumentParser(
        description="Quality of the multi-task model vs baselines and single-task models (test split).",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", choices=list(profiles), default="smoke")
    parser.add_argument(
        "--seeds", type=int, default=None, help="number of seeds (default: the profile's)"
    )
    parser.add_argument(
        "--variants",
        default=",".join(variants),
        help="comma-separated joint variants (default: all): " + ", ".join(variants),
    )
    parser.add_argument(
        "--no-single-task", action="store_true", help="skip the single-task models (no Δ_MTL)"
    )
    parser.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="joint steps S (one validation at the end); single-task steps follow the budget rule",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="run folders (default benchmarks/runs/quality-<profile>)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results stem, writes STEM.md and STEM.json (default benchmarks/results/quality[_smoke])",
    )
    parser.add_argument(
        "--resume", action="store_true", help="reuse finished runs whose config is unchanged"
    )
    parser.add_argument(
        "--variant-seeds",
        type=int,
        default=None,
        help="train the variants other than 'joint' for the first K seeds only "
        "(default: the profile's; cpu: 1)",
    )
    parser.add_argument(
        "--seed-offsets",
        default=None,
        help="comma-separated seed offsets this process trains (default: all, 0..seeds-1); "
        "split seeds over processes, then run once more with --resume to write the table",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the table from the runs already finished in --work-dir "
        "(each run's result.json keeps the config it ran with)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every run, joint and single-task alike (repeat it): measures a "
        "recipe against single-task models trained with the same recipe; give it its own --work-dir",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per run (training.threads): 1 lets two processes share 2 cores",
    )
    args = parser.parse_args(argv)
    return parser, args
