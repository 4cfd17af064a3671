"""``benchmarks/throughput.py``'s variants, launched one after the other from the parent process."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from throughput_common import REPO, TASKS, trainer_best_dtype


@dataclass
class Bench:
    """The parent's state: the plan every worker reads, the scratch folder, the results so far,
    and how a worker is launched (``throughput.launch``)."""

    plan: dict[str, Any]
    workdir: Path
    results: dict[str, Any]
    launcher: Callable[..., dict[str, Any]]
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / "workers.log"

    @property
    def runs(self) -> dict[str, Any]:
        return self.results["runs"]

    def step(self, label: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run worker ``name`` with ``params``, printing its wall time and the load around it."""
        print(f"  running {label} ...", end="", flush=True)
        out = self.launcher(name, self.plan, params, self.workdir, self.log)
        self.results["loads"] += [out["load_before"], out["load_after"]]
        print(
            f" {out['wall_s']:.1f} s (load {out['load_before']:.1f} -> {out['load_after']:.1f})",
            flush=True,
        )
        return out


def run_joint_and_plain(
    bench: Bench, args: argparse.Namespace, skip: set[str], seq: list[str]
) -> str:
    """The matmul peak, then shopmtl and the plain loop, interleaved ``--repeats`` times (the
    best loop of each kept); returns the shopmtl run's folder, which predict reads."""
    runs, examples, steps = bench.runs, args.examples_per_task, bench.plan["steps"]
    if "matmul" not in skip:
        runs["matmul"] = bench.step("matmul peak", "matmul", {})
    run_dir = str(bench.workdir / "run-shopmtl")
    for k in range(args.repeats):  # interleaved: shopmtl, plain, shopmtl, plain, ...
        output_dir = run_dir if k == 0 else str(bench.workdir / f"run-{k}")
        params = {"examples": examples, "steps": steps, "output_dir": output_dir}
        out = bench.step(f"1 shopmtl (#{k + 1})", "shopmtl", params)
        if "shopmtl" not in runs or out["loop_s"] < runs["shopmtl"]["loop_s"]:
            runs["shopmtl"] = {**out, "output_dir": run_dir}
        if "plain" not in skip:
            out = bench.step(
                f"2 plain loop (#{k + 1})", "plain", {"examples": examples, "steps": steps}
            )
            if "plain" not in runs or out["loop_s"] < runs["plain"]["loop_s"]:
                runs["plain"] = out
    if "plain" in runs and runs["plain"]["task_sequence"] != runs["shopmtl"]["task_sequence"]:
        raise SystemExit(
            "the plain loop did not draw the same tasks as shopmtl's trainer: the comparison is void"
        )
    if runs["shopmtl"]["task_sequence"] != seq:
        raise SystemExit(
            "shopmtl drew other tasks than the replayed schedule: the Trainer runs would not match"
        )
    return run_dir


def run_trainers(bench: Bench, args: argparse.Namespace, skip: set[str]) -> None:
    """The four Trainer fine-tunes, with fixed padding in fp32 and with their best settings."""
    plan = bench.plan
    best_bf16 = trainer_best_dtype(plan["precision"]) == "bf16"
    for key, fixed, bf16 in (("trainer-fixed", True, False), ("trainer-best", False, best_bf16)):
        if key in skip:
            continue
        params = [
            {
                "examples": args.examples_per_task,
                "task": task,
                "steps": plan["task_steps"][task],
                "fixed": fixed,
                "bf16": bf16,
                "output_dir": str(bench.workdir / f"{key}-{task}"),
            }
            for task in TASKS
            if plan["task_steps"][task]
        ]
        if args.quick:  # one process for the four runs: less start-up, walls measured inside it
            out = bench.step(f"3 {key} (4 tasks, one process)", "trainers", {"runs": params})
            per_task = [{**t, "peak_rss_mib": out["peak_rss_mib"]} for t in out["per_task"]]
        else:  # the usual way: one script, one process per task
            per_task = [bench.step(f"3 {key} {p['task']}", "trainer", p) for p in params]
        bench.runs[key] = {
            "per_task": per_task,
            "samples": sum(t["samples"] for t in per_task),
            **{k: sum(t[k] for t in per_task) for k in ("loop_s", "loop_cpu_s", "wall_s", "cpu_s")},
            "peak_rss_mib": max(t["peak_rss_mib"] for t in per_task),
        }


def run_predict(bench: Bench, args: argparse.Namespace, skip: set[str], run_dir: str) -> None:
    """``predict_frame`` against a bare encoder, then the ``shopmtl predict`` command per task."""
    if "predict" in skip:
        return
    inputs = bench.workdir / "predict-inputs"
    inputs.mkdir()
    rows = args.predict_rows or args.examples_per_task
    bench.runs["predict"] = bench.step(
        "5 predict", "predict", {"run_dir": run_dir, "rows": rows, "inputs_dir": str(inputs)}
    )
    if "predict-cli" in skip:
        return
    timings = bench.runs["predict_cli"] = {}
    for task in TASKS:
        print(f"  running 5 shopmtl predict --task {task} ...", end="", flush=True)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shopmtl.core.cli",
                "predict",
                run_dir,
                "--task",
                task,
                "--precision",
                bench.plan["precision"],
                "--input",
                str(inputs / f"{task}.parquet"),
                "--output",
                str(inputs / f"{task}.out.parquet"),
            ],
            check=True,
            cwd=REPO,
            capture_output=True,
        )
        timings[task] = time.perf_counter() - started
        print(f" {timings[task]:.1f} s", flush=True)


def run_scale(bench: Bench, args: argparse.Namespace, skip: set[str]) -> None:
    """shopmtl's joint training at each ``--scale`` multiple of the rows, one epoch each."""
    factors = [int(f) for f in args.scale.split(",") if f.strip()] if "scale" not in skip else []
    if not factors:
        return
    base = args.scale_base or max(args.batch_size, args.examples_per_task // 8)
    bench.runs["scale"] = []
    for factor in factors:
        n = base * factor
        sizes = {t: min(n, bench.plan["train_rows"][t]) for t in TASKS}
        steps = max(2, sum(sizes.values()) // args.batch_size)
        out = bench.step(
            f"6 scale {factor}x ({n} rows/task, {steps} steps)",
            "shopmtl",
            {"examples": n, "steps": steps, "output_dir": str(bench.workdir / f"scale-{factor}")},
        )
        out.pop("task_sequence", None)
        bench.runs["scale"].append({**out, "factor": factor, "examples": n})
