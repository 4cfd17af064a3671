"""Peak memory of ``shopmtl predict`` on a file and on the same file 10x longer.

    python benchmarks/predict_memory.py [--run RUN_DIR] [--encoder tiny|minilm] [--rows 20000] [--format csv]

Writes a 1x file (``--rows`` price_bin rows, each text distinct) and a 10x file, runs
``shopmtl predict`` on each in its own process and reads that process's peak RSS. Then the
10x file once more in a single chunk (``--chunk-rows`` = all rows: what reading the whole
file into pandas costs, as predict did before it streamed). Target (issue #12): the 10x
file peaks at <= 1.2x the memory of the 1x file.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy_common import TASK, add_run_options, ensure_run, machine, test_rows

MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_mib(command: list[str]) -> tuple[float, float]:
    """Peak RSS (MiB) of ``command`` run in a fresh process, and its wall time."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True
    )
    code, kib = out.stdout.split()
    if code != "0":
        raise SystemExit(f"{' '.join(command)} failed ({code})")
    return int(kib) / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_options(parser)
    parser.set_defaults(encoder="tiny")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--format", choices=["csv", "parquet", "jsonl"], default="csv")
    args = parser.parse_args()
    run_dir = ensure_run(args)

    from shopmtl.core import api

    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        frame = test_rows(run_dir, 10 * args.rows)
        for scale in (1, 10):
            api.write_table(frame.head(scale * args.rows), Path(folder) / f"x{scale}.{args.format}")
        base = [sys.executable, "-m", "shopmtl.core.cli", "predict", str(run_dir), "--task", TASK]
        for label, scale, extra in (
            ("1x", 1, []),
            ("10x", 10, []),
            ("10x, one chunk", 10, ["--chunk-rows", str(10 * args.rows)]),
        ):
            source = Path(folder) / f"x{scale}.{args.format}"
            rows[label] = (
                scale * args.rows,
                source.stat().st_size / 2**20,
                *peak_mib(
                    [
                        *base,
                        "--input",
                        str(source),
                        "--output",
                        str(Path(folder) / f"out.{args.format}"),
                        *extra,
                    ]
                ),
            )
    print(f"# predict memory, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}; run: {run_dir}; format {args.format}\n")
    print("| input | rows | file MiB | peak RSS MiB | ÷ 1x | wall s |")
    print("|---|---|---|---|---|---|")
    reference = rows["1x"][2]
    for label, (n, size, peak, wall) in rows.items():
        print(
            f"| {label} | {n:,} | {size:.1f} | {peak:.0f} | {peak / reference:.2f} | {wall:.1f} |"
        )


if __name__ == "__main__":
    main()
