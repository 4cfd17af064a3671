#!/usr/bin/env python
"""Data beyond memory (issue #11): wall time and peak RSS of the data path at 1x, 10x and 30x.

``k``x is ``k`` copies of the bundled Online Retail file, each copy's products, customers,
invoices and descriptions renamed (copy 0 is the file itself), written as a folder of
Parquet files -- one per copy, read as one table through ``data.path``. Every copy cleans,
splits and aggregates exactly like the original, so every task's table is ``k`` times the
1x one and the targets are checkable: time <= 1.3x linear in the rows, peak RSS at 30x <= 6 GB.

For each scale it runs, each in a fresh process with a cold cleaned-table cache:

* ``shopmtl data TASK --split train --output rows.parquet`` for the four built-in tasks;
* ``shopmtl train`` (the default config) up to and including its first optimiser step: the
  child patches the progress bar's ``step_done`` to leave right after step 1, so neither
  the remaining steps nor the final scoring are counted.

Wall time and peak RSS come from ``/usr/bin/time -f``. Run from the repository root, under
the shared lock (it takes about half an hour on 2 cores)::

    flock /work/heavy.lock .venv/bin/python benchmarks/scale.py --scales 1 10 30 --json benchmarks/results/scale.json

``--input csv`` writes the ``k`` copies as one CSV file instead (``data.path`` takes one CSV),
to measure reading a CSV; ``--only sales recommend`` runs just those commands (``train`` for
the run to step 1)::

    flock /work/heavy.lock .venv/bin/python benchmarks/scale.py --input csv --scales 1 10 --only sales recommend
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = ("sales", "price_bin", "user_profile", "recommend")
WORK = Path(tempfile.gettempdir()) / "shopmtl-scale"


def make_copies(k: int, folder: Path) -> Path:
    """``folder`` with ``copy-000.parquet`` ... one renamed copy of the bundled file each (kept between runs)."""
    import pandas as pd
    from shopmtl import retail

    folder.mkdir(parents=True, exist_ok=True)
    raw = None
    for i in range(k):
        path = folder / f"copy-{i:03d}.parquet"
        if path.is_file():
            continue
        raw = pd.read_parquet(retail.DEFAULT_DATA_PATH) if raw is None else raw
        renamed(raw, i).to_parquet(path.with_suffix(".tmp"), index=False)
        os.replace(path.with_suffix(".tmp"), path)
    return folder


def make_csv(k: int, folder: Path) -> Path:
    """``folder/copies.csv``: the ``k`` renamed copies in one CSV, written copy by copy (kept between runs)."""
    import pandas as pd
    from shopmtl import retail

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "copies.csv"
    if not path.is_file():
        raw = pd.read_parquet(retail.DEFAULT_DATA_PATH)
        with path.with_suffix(".tmp").open("w", newline="") as out:
            for i in range(k):
                renamed(raw, i).to_csv(out, index=False, header=i == 0)
        os.replace(path.with_suffix(".tmp"), path)
    return path


def renamed(raw, i: int):
    """Copy ``i`` of the raw table: every key and text made its own, the cleaning's outcome unchanged.

    Fees (POST, ADJUST..., see retail.NON_PRODUCT_*) keep their codes so they are still
    dropped; a cancellation's ``C`` prefix and a missing description ("nan") are kept.
    """
    from shopmtl import retail

    if i == 0:
        return raw
    code = raw["StockCode"].astype(str)
    cleaned = code.str.strip().str.upper()
    fee = cleaned.isin(retail.NON_PRODUCT_CODES) | cleaned.str.startswith(
        retail.NON_PRODUCT_PREFIXES
    )
    text = raw["Description"]
    stripped = text.str.strip()
    missing = text.isna() | (stripped == "nan") | (stripped == "")
    return raw.assign(
        InvoiceNo=raw["InvoiceNo"].astype(str) + f"-{i}",
        StockCode=code.where(fee, cleaned + f"-K{i}"),
        Description=text.where(missing, stripped + f" K{i}").astype(text.dtype),
        CustomerID=raw["CustomerID"] + 100_000 * i,
    )


def timed(command: list[str], env: dict[str, str], log: Path, cap_gb: float) -> dict[str, float]:
    """Run ``command`` under ``/usr/bin/time``: wall seconds and peak RSS (GB) of the process.

    A watchdog ends the command's process group when its resident memory passes ``cap_gb``:
    the machine is shared, and a regression must not take it down.
    """
    stats = log.with_suffix(".time")
    with log.open("w") as out:
        child = subprocess.Popen(
            ["/usr/bin/time", "-f", "%e %M", "-o", str(stats), *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        while child.poll() is None:
            if group_rss_gb(child.pid) > cap_gb:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                raise SystemExit(
                    f"{' '.join(command)} passed {cap_gb} GB and was stopped; see {log}"
                )
            time.sleep(0.5)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}); see {log}")
    seconds, kilobytes = stats.read_text().split()[-2:]
    return {"seconds": float(seconds), "peak_rss_gb": int(kilobytes) / 1024**2}


def group_rss_gb(group: int) -> float:
    """Resident memory of every process in process group ``group`` (GB)."""
    total = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) == group:
                total += int((entry / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            continue  # the process ended meanwhile
    return total / 1024**3


def measure(
    k: int,
    cap_gb: float,
    source: str = "parquet",
    only: tuple[str, ...] = (*TASKS, "train"),
    config: Path | None = None,
    processes: int = 1,
) -> dict[str, dict[str, float]]:
    """The commands ``only`` names at scale ``k``, each with a fresh cleaned-table cache (the first run on new data)."""
    if source == "csv":
        data = make_csv(k, WORK / f"csv-k{k}")
    else:
        data = make_copies(k, WORK / f"k{k}")
    if (
        k == 1 and source == "parquet"
    ):  # one file, as data.path always allowed: comparable with code before folders
        data = data / "copy-000.parquet"
    out, results = WORK / "out", {}
    out.mkdir(parents=True, exist_ok=True)
    shopmtl = str(Path(sys.executable).with_name("shopmtl"))
    commands = {
        f"data {t}": [
            shopmtl,
            "data",
            t,
            "--split",
            "train",
            "--output",
            str(out / f"{t}.parquet"),
            f"data.path={data}",
        ]
        for t in TASKS
        if t in only
    }
    if "train" in only:
        launch = (
            [sys.executable]
            if processes == 1
            else [
                str(Path(sys.executable).with_name("accelerate")),
                "launch",
                "--multi_gpu",
                "--num_processes",
                str(processes),
                "--num_machines",
                "1",
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
            ]
        )
        commands["train to step 1"] = [
            *launch,
            __file__,
            "--first-step",
            *([str(config)] if config else []),
            f"data.path={data}",
            "training.log_every=1000000",
            f"output_dir={out / 'run'}",
        ]
    for name, command in commands.items():
        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=WORK))
        env = {
            **os.environ,
            "SHOPMTL_CACHE_DIR": str(cache),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
        }
        started = time.time()
        results[name] = timed(command, env, out / f"k{k}-{name.replace(' ', '_')}.log", cap_gb)
        shutil.rmtree(cache, ignore_errors=True)
        print(
            f"  {k:>3}x {name:<20} {results[name]['seconds']:7.1f} s  {results[name]['peak_rss_gb']:5.2f} GB"
            f"  ({time.time() - started:.0f} s)",
            flush=True,
        )
    shutil.rmtree(out / "run", ignore_errors=True)
    return results


def first_step(overrides: list[str]) -> None:
    """``shopmtl train OVERRIDES`` that exits right after its first optimiser step."""
    import runpy

    from torch.optim.optimizer import register_optimizer_step_post_hook

    def leave(optimizer, args, kwargs) -> None:  # torch's hook signature
        print("first step done", flush=True)
        os._exit(0)  # skip the other steps and the final scoring: not what is measured

    register_optimizer_step_post_hook(leave)  # every optimiser, so the run's own, once stepped
    sys.argv = ["shopmtl", "train", *overrides]
    runpy.run_module("shopmtl.core.cli", run_name="__main__")  # `python -m shopmtl.core.cli`


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--cap-gb", type=float, default=12.0, help="stop a command whose memory passes this"
    )
    parser.add_argument(
        "--input",
        choices=("parquet", "csv"),
        default="parquet",
        help="the copies as a folder of Parquet files, or as one CSV file",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=(*TASKS, "train"),
        default=(*TASKS, "train"),
        help="run only these commands (a task's `data`, or `train` to step 1)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="the config `train` runs (default: the embedded default), "
        "e.g. examples/configs/full_data.yaml: every row, no caps",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run `train` as this many processes "
        "(accelerate launch); peak RSS is then the largest process's",
    )
    parser.add_argument("--first-step", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_step is not None:
        first_step(args.first_step)
        return
    figures = {}
    for k in args.scales:
        figures[f"{k}x"] = measure(
            k, args.cap_gb, args.input, tuple(args.only), args.config, args.processes
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
