#!/usr/bin/env python
"""Throughput of shopmtl's joint training against a plain loop, four HF Trainer runs and the hardware.

Run from the repository root (the shopmtl virtualenv active)::

    python benchmarks/throughput.py                       # the full run: ~9.5 minutes on 2 idle AMD EPYC cores
    python benchmarks/throughput.py --quick               # ~1.5 minutes: checks every variant runs (ratios are noise)
    python benchmarks/throughput.py --json benchmarks/results/throughput.json
    python benchmarks/throughput.py --threads 2           # all cores: only on an otherwise idle machine
    python benchmarks/throughput.py --quick --precision no   # fp32 (default auto: what a run here would use)

Every measured variant runs in its own subprocess (fresh memory, so its peak RSS -- VmHWM
of ``/proc/self/status`` -- is its own), launched from this parent one after the other;
the parent prints the table of ratios. All variants see the same data: the four built-in
tasks' train frames, subsampled to ``--examples-per-task`` rows each by the run's seed, the
same sequence-length cap and batch size. One *sample* is one training example of a task,
whatever the path.

Variants
  shopmtl         ``shopmtl.core.engine.trainer.train`` of the four tasks jointly (the default config plus
                  overrides; evaluation only at the last step, on a few rows).
  plain           the same model (``build_encoder``/``build_model``) and the very same batches
                  (precomputed with shopmtl's sampler and ``make_batch``) in a hand-written
                  accelerate loop: forward, backward, clip, AdamW, schedule -- nothing else.
  trainer-fixed   four ``transformers.Trainer`` fine-tunes, one subprocess per task, each padding to
                  ``max_length`` (the usual recipe), fp32.
  trainer-best    the same four with their best settings: dynamic padding, and bf16 where the run's
                  precision is bf16 (fp32 otherwise).
  matmul          the peak of a large square matmul on this machine in the run's precision and fp32
                  (only fp32 when the run is fp32).
  predict         rows/s of ``predict_frame`` (what ``shopmtl predict`` runs) per task against a bare
                  encoder forward pass (tokenize, pad per batch, forward in the run's precision,
                  mean-pool) over the same rows; plus the ``shopmtl predict`` command end to end.
  scale           shopmtl's joint training at 1x, 4x and 16x the rows (one epoch each, so the steps
                  grow with the rows): wall time, loop time and peak RSS.

Precision. ``--precision`` (default ``auto``) is resolved as ``training.mixed_precision`` is
(``shopmtl.core.engine.hardware``) for this machine's CPU, on which every variant computes: ``auto`` is
bf16 only where the CPU computes bf16 natively (AVX512_BF16, AMX, Arm BF16), fp32 (``no``)
elsewhere -- emulated bf16 trained ~8x slower than fp32 on a 2-core AVX2 CPU. shopmtl and the
plain loop train in it, the best-settings Trainer runs use bf16 only where it is bf16, and the
FLOP/s ratio divides by the matmul peak of that dtype; the table names both, and the machine.

Equal work: the joint run takes ``--steps`` steps of ``--batch-size`` (default: one epoch of
the four tasks, ``4 * examples / batch``); the task drawn at each step is replayed here from
shopmtl's sampler, and each Trainer run gets exactly as many steps of the same batch size as
its task got in the joint run, so every variant trains on the same number of samples.

Threads. Every variant runs with ``--threads`` torch threads (default 1). On a shared machine
one thread per process is what holds up: with 2 threads and another job on the 2 cores,
OpenMP threads spin-wait for a descheduled partner and small kernels ran 10-25x slower
(shopmtl's loop: 159 s instead of 30 s). With one thread the *CPU time* of a process is
the work it did whatever else runs, so every time below is also given as CPU time, and
the ratios on that basis are the ones to trust when the load average is above ~1.

Times. ``loop`` is the steady training-loop time: each variant timestamps the end of every
forward pass (shopmtl through a loss-weighting plugin -- its trainer has no per-step hook,
and the weighting is the one plugin callable it calls once per micro-batch, right after the
loss -- the plain loop inline, the Trainer runs inside the model's forward); ``loop = (last - first) * steps / (steps - 1)``, so it
leaves out the first step's one-off costs and measures all variants at the same phase.
``wall`` is the subprocess's whole life as the parent sees it (interpreter start, imports,
data, tokenization, model loading, training, and for shopmtl the final evaluation, baselines
and checkpoints it always does). The four Trainer runs' loops and walls are summed.

FLOP/s. Training FLOPs = 6 x non-embedding encoder parameters x tokens (the usual 6N
estimate; attention's own FLOPs, ~5 % at 128 tokens, and the tiny heads are left out), with
tokens counted as the encoder sees them: the padded ``input_ids`` of every step. The peak is
the best of a few 4096x4096 matmuls in the same dtype (the run's precision; fp32 for the
fixed-padding Trainer runs).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling modules
from throughput_common import (
    DTYPE_NAMES,
    REPO,
    TASKS,
    bench_hardware,
    bench_precision,  # noqa: E402
    shopmtl_overrides,
    trainer_best_dtype,
)
from throughput_report import derive, report  # noqa: E402
from throughput_workers import worker_main  # noqa: E402

# --------------------------------------------------------------------------- parent


def launch(
    name: str, plan: dict[str, Any], params: dict[str, Any], workdir: Path, log: Path
) -> dict[str, Any]:
    """Run one worker subprocess; its result plus the parent's view: wall time and load averages."""
    tag = f"{name}-{len(list(workdir.glob('*.spec.json')))}"
    spec_path, out_path = workdir / f"{tag}.spec.json", workdir / f"{tag}.out.json"
    spec_path.write_text(json.dumps({"plan": plan, "params": params}))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log, "a", encoding="utf-8") as sink:
        sink.write(f"\n===== {tag} {params}\n")
        sink.flush()
        child = subprocess.Popen(
            [sys.executable, __file__, "--worker", name, str(spec_path), str(out_path)],
            stdout=sink,
            stderr=sink,
            cwd=REPO,
            env={**os.environ, "TQDM_DISABLE": "1"},
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = code = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if code != 0 or not out_path.is_file():
        raise SystemExit(f"worker {tag} failed (exit {code}); see {log}")
    result = json.loads(out_path.read_text())
    result.update(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
    return result


def schedule(plan: dict[str, Any], examples: int, steps: int) -> list[str]:
    """The task of each joint step, replayed from shopmtl's sampler (sizes = the subsampled train rows)."""
    from shopmtl.core.config import load_config
    from shopmtl.core.mtl.sampler import TaskSampler, task_probabilities

    config = load_config(
        None, shopmtl_overrides(plan, examples, steps, "/nonexistent", timed=False)
    )
    sizes = {t: min(examples, plan["train_rows"][t]) for t in TASKS}
    weights = {t: config.tasks[t].sample_weight for t in TASKS if t in config.tasks}
    sampler = TaskSampler(
        sizes,
        task_probabilities(sizes, config.sampler, None, weights),
        config.training.batch_size,
        config.seed,
    )
    return [sampler.next()[0] for _ in range(steps)]


def train_rows() -> dict[str, int]:
    """Train rows of each task before subsampling, cached in the temp folder by the mtimes of the
    bundled data and of the built-in task plugins (building the four datasets takes ~10 s)."""
    import hashlib

    sources = [
        REPO / "plugins" / "data" / "online_retail_2010_2011.parquet",
        *sorted((REPO / "plugins").glob("*.py")),
    ]
    key = hashlib.sha1(  # a cache key, not a secret
        repr([(str(p), p.stat().st_mtime_ns) for p in sources if p.exists()]).encode(),
        usedforsecurity=False,
    ).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"shopmtl_bench_train_rows_{key}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    from shopmtl.core.config import load_config
    from shopmtl.core.data.prepare import build_task_data
    from shopmtl.plugins.builtin import BUILTIN_PLUGINS
    from shopmtl.registry.manager import load_plugins

    config = load_config(None, ["tasks.recommend.settings.ranking_negatives=1"])
    plugins = load_plugins(BUILTIN_PLUGINS)
    rows = {t: len(build_task_data(plugins.tasks[t], config)["train"]) for t in TASKS}
    cache.write_text(json.dumps(rows))
    return rows


def machine(hardware) -> dict[str, Any]:
    """The machine the figures come from: ``hardware`` (:func:`bench_hardware`), memory and software."""
    import torch
    import transformers

    mem = next(
        (int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0
    )
    return {
        "cpu": hardware.cpu_model,
        "nproc": os.cpu_count(),
        "ram_gib": round(mem / 1024**2, 1),
        "isa": list(hardware.cpu_flags),
        "describe": hardware.describe(),
        "hardware": hardware.to_dict(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": hardware.threads,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(REPO))
        worker_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
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
    examples = args.examples_per_task
    steps = args.steps or max(2, len(TASKS) * examples // args.batch_size)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.quick:
        skip.add("predict-cli")
    threads = args.threads or (os.cpu_count() or 1)
    hardware = bench_hardware(threads)
    try:
        choice = bench_precision(args.precision, hardware)
    except ValueError as error:  # PrecisionError: e.g. fp16 on a CPU
        raise SystemExit(str(error)) from None
    print(f"machine: {hardware.describe()}", flush=True)
    print(f"precision: {DTYPE_NAMES[choice.precision]} ({choice.reason})", flush=True)
    for warning in choice.warnings:
        print(f"warning: {warning}", flush=True)
    load = os.getloadavg()[0]
    if threads > 1 and load > 0.5 * (os.cpu_count() or 1):
        print(
            f"warning: load average {load:.1f} on {os.cpu_count()} cores: other processes compete for the cores, and "
            f"torch's {threads} OpenMP threads stall on each other when one of them is descheduled (10-25x slower "
            "small kernels measured here); pass --threads 1 for numbers that hold up beside other work",
            flush=True,
        )
    plan = {
        "examples_per_task": examples,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "steps": steps,
        "samples": steps * args.batch_size,
        "seed": 42,
        "precision": choice.precision,
        "precision_requested": args.precision,
        "precision_reason": choice.reason,
        "threads": threads,
        "eval_examples": 16 if args.quick else 64,
        "matmul_size": 2048 if args.quick else 4096,
        "matmul_repeats": 3 if args.quick else 5,
        "predict_repeats": 1 if args.quick else 2,
        "train_rows": train_rows(),
    }
    seq = schedule(plan, examples, steps)
    plan["task_steps"] = {t: seq.count(t) for t in TASKS}
    workdir = Path(tempfile.mkdtemp(prefix="shopmtl-bench-"))
    log = workdir / "workers.log"
    results: dict[str, Any] = {
        "plan": plan,
        "machine": machine(hardware),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "runs": {},
        "loads": [],
    }
    runs = results["runs"]
    print(f"scratch folder {workdir} (worker output in {log})", flush=True)
    print(
        f"plan: {steps} joint steps of {args.batch_size}; per task {plan['task_steps']}", flush=True
    )
    t_all = time.perf_counter()

    def step(label: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        print(f"  running {label} ...", end="", flush=True)
        out = launch(name, plan, params, workdir, log)
        results["loads"] += [out["load_before"], out["load_after"]]
        print(
            f" {out['wall_s']:.1f} s (load {out['load_before']:.1f} -> {out['load_after']:.1f})",
            flush=True,
        )
        return out

    if "matmul" not in skip:
        runs["matmul"] = step("matmul peak", "matmul", {})
    run_dir = str(workdir / "run-shopmtl")
    for k in range(args.repeats):  # interleaved: shopmtl, plain, shopmtl, plain, ...
        out = step(
            f"1 shopmtl (#{k + 1})",
            "shopmtl",
            {
                "examples": examples,
                "steps": steps,
                "output_dir": run_dir if k == 0 else str(workdir / f"run-{k}"),
            },
        )
        if "shopmtl" not in runs or out["loop_s"] < runs["shopmtl"]["loop_s"]:
            runs["shopmtl"] = {**out, "output_dir": run_dir}
        if "plain" not in skip:
            out = step(f"2 plain loop (#{k + 1})", "plain", {"examples": examples, "steps": steps})
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
    best_bf16 = trainer_best_dtype(plan["precision"]) == "bf16"
    for key, fixed, bf16 in (("trainer-fixed", True, False), ("trainer-best", False, best_bf16)):
        if key in skip:
            continue
        params = [
            {
                "examples": examples,
                "task": task,
                "steps": plan["task_steps"][task],
                "fixed": fixed,
                "bf16": bf16,
                "output_dir": str(workdir / f"{key}-{task}"),
            }
            for task in TASKS
            if plan["task_steps"][task]
        ]
        if args.quick:  # one process for the four runs: less start-up, walls measured inside it
            out = step(f"3 {key} (4 tasks, one process)", "trainers", {"runs": params})
            per_task = [{**t, "peak_rss_mib": out["peak_rss_mib"]} for t in out["per_task"]]
        else:  # the usual way: one script, one process per task
            per_task = [step(f"3 {key} {p['task']}", "trainer", p) for p in params]
        runs[key] = {
            "per_task": per_task,
            "samples": sum(t["samples"] for t in per_task),
            **{k: sum(t[k] for t in per_task) for k in ("loop_s", "loop_cpu_s", "wall_s", "cpu_s")},
            "peak_rss_mib": max(t["peak_rss_mib"] for t in per_task),
        }
    if "predict" not in skip:
        inputs = workdir / "predict-inputs"
        inputs.mkdir()
        runs["predict"] = step(
            "5 predict",
            "predict",
            {"run_dir": run_dir, "rows": args.predict_rows or examples, "inputs_dir": str(inputs)},
        )
        if "predict-cli" not in skip:
            runs["predict_cli"] = {}
            for task in TASKS:
                print(f"  running 5 shopmtl predict --task {task} ...", end="", flush=True)
                t = time.perf_counter()
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
                        plan["precision"],
                        "--input",
                        str(inputs / f"{task}.parquet"),
                        "--output",
                        str(inputs / f"{task}.out.parquet"),
                    ],
                    check=True,
                    cwd=REPO,
                    capture_output=True,
                )
                runs["predict_cli"][task] = time.perf_counter() - t
                print(f" {runs['predict_cli'][task]:.1f} s", flush=True)
    factors = [int(f) for f in args.scale.split(",") if f.strip()] if "scale" not in skip else []
    if factors:
        base = args.scale_base or max(args.batch_size, examples // 8)
        runs["scale"] = []
        for factor in factors:
            n = base * factor
            sizes = {t: min(n, plan["train_rows"][t]) for t in TASKS}
            s = max(2, sum(sizes.values()) // args.batch_size)
            out = step(
                f"6 scale {factor}x ({n} rows/task, {s} steps)",
                "shopmtl",
                {"examples": n, "steps": s, "output_dir": str(workdir / f"scale-{factor}")},
            )
            out.pop("task_sequence", None)
            runs["scale"].append({**out, "factor": factor, "examples": n})
    for key in ("shopmtl", "plain"):
        if key in runs:
            runs[key]["task_sequence"] = "".join(
                str(TASKS.index(t)) for t in runs[key]["task_sequence"]
            )
    results["derived"] = derive(results)
    results["total_s"] = time.perf_counter() - t_all
    text = report(results)
    results["table"] = text
    print("\n" + text)
    print(f"\n(total {results['total_s']:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.json}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
