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
  shopmtl         ``shopmtl.core.api.train`` of the four tasks jointly (the default config plus
                  overrides; evaluation only at the last step, on a few rows).
  plain           the same model and the very same batches (``shopmtl.core.api.plain_training``:
                  shopmtl's sampler, seed and batching, without the trainer) in a hand-written
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
(``shopmtl.core.api.resolve_precision``) for this machine's CPU, on which every variant computes: ``auto`` is
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
from throughput_args import parse_args  # noqa: E402
from throughput_common import (
    DTYPE_NAMES,
    REPO,
    TASKS,
    bench_hardware,
    bench_precision,  # noqa: E402
    shopmtl_overrides,
)
from throughput_report import derive, report  # noqa: E402
from throughput_variants import (  # noqa: E402
    Bench,
    run_joint_and_plain,
    run_predict,
    run_scale,
    run_trainers,
)
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
    from shopmtl.core import api

    config = api.load_config(
        None, shopmtl_overrides(plan, examples, steps, "/nonexistent", timed=False)
    )
    sizes = {t: min(examples, plan["train_rows"][t]) for t in TASKS}
    weights = {t: config.tasks[t].sample_weight for t in TASKS if t in config.tasks}
    sampler = api.TaskSampler(
        sizes,
        api.task_probabilities(sizes, config.sampler, None, weights),
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
    from shopmtl.core import api

    config = api.load_config(None, ["tasks.recommend.settings.ranking_negatives=1"])
    plugins = api.load_plugins()
    rows = {t: len(api.build_task_data(plugins.tasks[t], config)["train"]) for t in TASKS}
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


def choose_precision(args: argparse.Namespace, threads: int):
    """This machine and the precision every variant runs in; prints both, and a warning when
    other work competes for the cores."""
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
    return hardware, choice


def make_plan(args: argparse.Namespace, steps: int, threads: int, choice) -> dict[str, Any]:
    """What every worker reads: sizes, seed, precision, threads and the tasks' train rows."""
    return {
        "examples_per_task": args.examples_per_task,
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


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(REPO))
        worker_main(sys.argv[2:])
        return
    args = parse_args(__doc__.split("\n")[0])
    examples = args.examples_per_task
    steps = args.steps or max(2, len(TASKS) * examples // args.batch_size)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.quick:
        skip.add("predict-cli")
    threads = args.threads or (os.cpu_count() or 1)
    hardware, choice = choose_precision(args, threads)
    plan = make_plan(args, steps, threads, choice)
    seq = schedule(plan, examples, steps)
    plan["task_steps"] = {t: seq.count(t) for t in TASKS}
    workdir = Path(tempfile.mkdtemp(prefix="shopmtl-bench-"))
    results: dict[str, Any] = {
        "plan": plan,
        "machine": machine(hardware),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "runs": {},
        "loads": [],
    }
    bench = Bench(plan, workdir, results, launch)
    print(f"scratch folder {workdir} (worker output in {bench.log})", flush=True)
    print(
        f"plan: {steps} joint steps of {args.batch_size}; per task {plan['task_steps']}", flush=True
    )
    t_all = time.perf_counter()
    run_dir = run_joint_and_plain(bench, args, skip, seq)
    run_trainers(bench, args, skip)
    run_predict(bench, args, skip, run_dir)
    run_scale(bench, args, skip)
    finish(results, args, t_all)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


def finish(results: dict[str, Any], args: argparse.Namespace, t_all: float) -> None:
    """Derive the ratios, print the table and write the JSON."""
    runs = results["runs"]
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


if __name__ == "__main__":
    main()
