#!/usr/bin/env python
"""Throughput of shopmtl's joint training against a plain loop, four HF Trainer runs and the hardware.

Run from the repository root (the shopmtl virtualenv active)::

    python benchmarks/throughput.py                       # the full run: ~9.5 minutes on 2 idle AMD EPYC cores
    python benchmarks/throughput.py --quick               # ~1.5 minutes: checks every variant runs (ratios are noise)
    python benchmarks/throughput.py --json benchmarks/results/throughput.json
    python benchmarks/throughput.py --threads 2           # all cores: only on an otherwise idle machine

Every measured variant runs in its own subprocess (fresh memory, so its peak RSS -- VmHWM
of ``/proc/self/status`` -- is its own), launched from this parent one after the other;
the parent prints the table of ratios. All variants see the same data: the four built-in
tasks' train frames, subsampled to ``--examples-per-task`` rows each by the run's seed, the
same sequence-length cap and batch size. One *sample* is one training example of a task,
whatever the path.

Variants
  shopmtl         ``shopmtl.core.trainer.train`` of the four tasks jointly (the default config plus
                  overrides; evaluation only at the last step, on a few rows).
  plain           the same model (``build_encoder``/``build_model``) and the very same batches
                  (precomputed with shopmtl's sampler and ``make_batch``) in a hand-written
                  accelerate loop: forward, backward, clip, AdamW, schedule -- nothing else.
  trainer-fixed   four ``transformers.Trainer`` fine-tunes, one subprocess per task, each padding to
                  ``max_length`` (the usual recipe), fp32.
  trainer-best    the same four with their best settings: dynamic padding and bf16.
  matmul          the peak of a large square matmul in bf16 and fp32 on this machine.
  predict         rows/s of ``predict_frame`` (what ``shopmtl predict`` runs) per task against a bare
                  encoder forward pass (tokenize, pad per batch, bf16 forward, mean-pool) over the
                  same rows; plus the ``shopmtl predict`` command end to end.
  scale           shopmtl's joint training at 1x, 4x and 16x the rows (one epoch each, so the steps
                  grow with the rows): wall time, loop time and peak RSS.

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
the best of a few 4096x4096 matmuls in the same dtype.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
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
from throughput_common import REPO, TASKS, loop_seconds, now, peak_rss_mib, shopmtl_overrides, task_frames  # noqa: E402
from throughput_report import derive, report  # noqa: E402
from throughput_trainer import worker_trainer, worker_trainers  # noqa: E402


# --------------------------------------------------------------------------- workers (subprocesses)


class _BenchTimer:
    """A plugin that timestamps the run: run start, every training forward, evaluations.

    Every training micro-batch calls the loss weighting once, right after the forward
    pass and the loss, so a weighting that records the time and multiplies by the static
    weight is a per-step hook (evaluation never calls it).
    """

    def __init__(self) -> None:
        self.run_start: float | None = None
        self.evaluations: list[tuple[str, int, float]] = []
        self.stamps: list[tuple[float, float]] = []
        self.tasks: list[str] = []

    def make_plugin(self):
        import torch
        from torch import nn

        from shopmtl import hookimpl

        timer = self

        class TimedStatic(nn.Module):
            def __init__(self, tasks, weights, options) -> None:
                super().__init__()
                self.weights = {t: float(weights.get(t, 1.0)) for t in tasks}

            def forward(self, task: str, loss: torch.Tensor) -> torch.Tensor:
                timer.stamps.append(now())
                timer.tasks.append(task)
                return loss * self.weights[task]

        class Plugin:
            @hookimpl
            def register_loss_weightings(self, register):
                register("bench_timed_static", TimedStatic)

            @hookimpl
            def on_run_start(self, run):
                timer.run_start = time.perf_counter()

            @hookimpl
            def on_evaluation(self, run, step, split, metrics):
                timer.evaluations.append((split, step, time.perf_counter()))

        return Plugin()


def worker_shopmtl(plan: dict[str, Any], examples: int, steps: int, output_dir: str) -> dict[str, Any]:
    """Variant 1: shopmtl's joint training through its public API."""
    started = now()
    import torch

    from shopmtl.core.config import load_config
    from shopmtl.core.trainer import train
    from shopmtl.plugins.builtin import BUILTIN_PLUGINS
    from shopmtl.registry.manager import load_plugins

    torch.set_num_threads(plan["threads"])
    imported = now()
    timer = _BenchTimer()
    plugins = load_plugins([*BUILTIN_PLUGINS, ("bench_timer", timer.make_plugin())], strict=True)
    config = load_config(None, shopmtl_overrides(plan, examples, steps, output_dir, timed=True))
    result = train(config, plugins, overwrite=True, progress=False)
    finished = now()
    val = [t for split, step, t in timer.evaluations if split == "val"]
    last = timer.stamps[-1]
    return {
        "steps": result.steps,
        "samples": result.steps * plan["batch_size"],
        "task_sequence": timer.tasks,
        "loop_s": loop_seconds(timer.stamps),
        "loop_cpu_s": loop_seconds(timer.stamps, 1),
        "imports_s": imported[0] - started[0],
        "setup_s": (timer.run_start or finished[0]) - imported[0],  # data, tokenization, model
        "after_loop_s": finished[0] - last[0],  # last backward, evaluation, baselines, checkpoints
        # what follows the loop: evaluations, baselines, checkpoints (less one mean step: the last backward)
        "final_eval_s": finished[0] - last[0] - loop_seconds(timer.stamps) / max(1, len(timer.stamps)),
        "final_eval_cpu_s": finished[1] - last[1] - loop_seconds(timer.stamps, 1) / max(1, len(timer.stamps)),
        "first_eval_at_s": (val[0] - last[0]) if val else None,
        "train_call_s": finished[0] - imported[0],
        "output_dir": output_dir,
    }


def _plain_batches(plan: dict[str, Any], examples: int, steps: int):
    """shopmtl's prepared tasks and the exact micro-batches its trainer draws (same sampler, seed)."""
    from shopmtl.core.batching import make_batch
    from shopmtl.core.encoder import load_tokenizer
    from shopmtl.core.prepare import prepare_task, select_tasks
    from shopmtl.core.sampler import TaskSampler, task_probabilities
    from shopmtl.core.textbank import TextBank

    config, plugins = task_frames(plan, examples)
    specs = select_tasks(config.tasks or plugins.tasks, plugins.tasks)
    bank = TextBank(load_tokenizer(config.encoder.name), config.encoder.max_length)
    tasks = {name: prepare_task(spec, config, bank) for name, spec in specs.items()}
    sizes = {n: len(t.rows["train"]) for n, t in tasks.items()}
    weights = {n: t.config.sample_weight for n, t in tasks.items()}
    sampler = TaskSampler(sizes, task_probabilities(sizes, config.sampler, plugins.samplers, weights), config.training.batch_size,
                          config.seed, groups={n: (t.rows["train"].text_ids, t.config.group_rows)
                                                for n, t in tasks.items() if t.config.group_rows})
    batches = []
    for _ in range(steps):
        name, index = sampler.next()
        batches.append((name, make_batch(tasks[name].rows["train"], index, bank, tasks[name].config.bag_of_words)))
    return config, specs, tasks, batches, bank


def worker_plain(plan: dict[str, Any], examples: int, steps: int) -> dict[str, Any]:
    """Variant 2: the same model and batches in a hand-written accelerate loop, nothing else."""
    import torch
    from accelerate import Accelerator

    from shopmtl.core.batching import text_buckets
    from shopmtl.core.encoder import build_encoder
    from shopmtl.core.model import build_model
    from shopmtl.core.sharing import build_sharing
    from shopmtl.registry.blocks import DEFAULT_LOSSES, wide_parameters

    torch.set_num_threads(plan["threads"])
    config, specs, tasks, batches, bank = _plain_batches(plan, examples, steps)
    torch.manual_seed(config.seed)
    encoder = build_encoder(config.encoder)
    sharing = build_sharing(config.sharing, list(tasks), encoder.hidden_size)  # the default run's MMoE gates
    model = build_model(encoder, specs, {n: t.head_spec(encoder.hidden_size, bank) for n, t in tasks.items()},
                        sharing=sharing)
    training = config.training
    groups = {(part, d): {"params": [], "lr": lr, "weight_decay": training.weight_decay if d else 0.0}
              for part, lr in (("encoder", training.learning_rate), ("heads", training.head_learning_rate),
                               ("wide", training.wide_learning_rate))
              for d in (True, False)}
    wide = {id(p) for p in wide_parameters(model)}
    for name, param in model.named_parameters():
        if param.requires_grad:
            part = "encoder" if name.startswith("encoder.") else "wide" if id(param) in wide else "heads"
            groups[(part, param.ndim >= 2 and "norm" not in name.lower())]["params"].append(param)
    optimizer = torch.optim.AdamW([g for g in groups.values() if g["params"]], fused=True)  # as shopmtl
    warmup = max(1, int(steps * training.warmup_ratio))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    accelerator = Accelerator(cpu=True, mixed_precision=config.training.mixed_precision)
    model, optimizer = accelerator.prepare(model, optimizer)
    losses = {name: DEFAULT_LOSSES[spec.kind] for name, spec in specs.items()}
    padded = [sum(int(ids.numel()) for ids, _ in text_buckets(b)) for _, b in batches]
    real = [sum(int(mask.sum()) for _, mask in text_buckets(b)) for _, b in batches]
    texts = [sum(int(ids.shape[0]) for ids, _ in text_buckets(b)) for _, b in batches]
    stamps: list[tuple[float, float]] = []
    model.train()
    for name, batch in batches:
        _, loss, _ = model(name, batch, losses[name])
        stamps.append(now())
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), training.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    backbone = accelerator.unwrap_model(model).encoder.backbone
    non_embedding = sum(p.numel() for n, p in backbone.named_parameters()
                        if not n.startswith(("embeddings.", "pooler.")))
    return {
        "steps": len(batches),
        "samples": len(batches) * training.batch_size,
        "task_sequence": [name for name, _ in batches],
        "loop_s": loop_seconds(stamps),
        "loop_cpu_s": loop_seconds(stamps, 1),
        "padded_tokens": padded,
        "real_tokens": real,
        "texts_encoded": texts,
        "non_embedding_params": non_embedding,
    }


def worker_matmul(plan: dict[str, Any]) -> dict[str, Any]:
    """Variant 4's denominator: the best of a few large square matmuls per dtype, FLOP/s."""
    import torch

    torch.set_num_threads(plan["threads"])
    out = {}
    n = plan["matmul_size"]
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        torch.mm(a, b)
        best, best_cpu = math.inf, math.inf
        for _ in range(plan["matmul_repeats"]):
            t = now()
            torch.mm(a, b)
            u = now()
            best, best_cpu = min(best, u[0] - t[0]), min(best_cpu, u[1] - t[1])
        out[name] = 2 * n**3 / best
        out[f"{name}_per_cpu_s"] = 2 * n**3 / best_cpu  # FLOPs per CPU-second of all threads
    return {"peak_flops": out, "size": n}


def worker_predict(plan: dict[str, Any], run_dir: str, rows: int, inputs_dir: str) -> dict[str, Any]:
    """Variant 5: ``predict_frame`` per task against a bare encoder forward over the same rows."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from shopmtl.core.predict import load_run, predict_frame
    from shopmtl.core.prepare import build_task_data
    from shopmtl.core.textbank import TextBank
    from shopmtl.plugins.builtin import BUILTIN_PLUGINS
    from shopmtl.registry.manager import load_plugins

    torch.set_num_threads(plan["threads"])
    plugins = load_plugins(BUILTIN_PLUGINS)
    run = load_run(run_dir, plugins.tasks)
    tokenizer = AutoTokenizer.from_pretrained(Path(run_dir) / "model" / "backbone")
    encoder = run.model.encoder.backbone  # the run's own trained backbone, bare: no pooling module, no heads
    batch_size = run.config.training.eval_batch_size
    max_length = run.config.encoder.max_length
    dtype = torch.bfloat16 if run.config.training.mixed_precision == "bf16" else torch.float32

    def bare(texts: list[str]) -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            for start in range(0, len(texts), batch_size):
                tok = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                                return_tensors="pt")
                hidden = encoder(**tok).last_hidden_state
                mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                _ = ((hidden * mask).sum(1).float() / mask.sum(1).float().clamp(min=1.0)).numpy()

    results = {}
    for task in TASKS:
        spec = plugins.tasks[task]
        test = build_task_data(spec, run.config)["test"]
        frame = test.sample(n=min(rows, len(test)), random_state=0).reset_index(drop=True)
        frame = frame.drop(columns=[c for c in spec.labels if c in frame.columns])
        frame.to_parquet(Path(inputs_dir) / f"{task}.parquet")
        texts = frame[spec.text].fillna("").astype(str).tolist()
        if spec.text_pair:
            texts += frame[spec.text_pair].fillna("").astype(str).tolist()
        # warm both paths up once (oneDNN kernels), then time them interleaved, best of `repeats`
        run.bank = TextBank(run.bank.tokenizer, max_length)
        predict_frame(run, task, frame.head(8))
        bare(texts[:8])
        shop, plain, shop_cpu, plain_cpu = math.inf, math.inf, math.inf, math.inf
        for _ in range(plan["predict_repeats"]):
            run.bank = TextBank(run.bank.tokenizer, max_length)  # a fresh bank: nothing tokenized yet
            t = now()
            predict_frame(run, task, frame)
            u = now()
            bare(texts)
            v = now()
            shop, shop_cpu = min(shop, u[0] - t[0]), min(shop_cpu, u[1] - t[1])
            plain, plain_cpu = min(plain, v[0] - u[0]), min(plain_cpu, v[1] - u[1])
        ids = run.bank.ids_for(texts)
        results[task] = {"rows": len(frame), "texts": len(texts), "distinct_texts": int(len(np.unique(ids))),
                         "shopmtl_s": shop, "bare_s": plain, "shopmtl_cpu_s": shop_cpu, "bare_cpu_s": plain_cpu}
    return {"tasks": results}


def worker_main(argv: list[str]) -> None:
    """``throughput.py --worker NAME SPEC.json OUT.json``: run one variant, write its result."""
    name, spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    plan, params = spec["plan"], spec["params"]
    fn = {"shopmtl": worker_shopmtl, "plain": worker_plain, "trainer": worker_trainer, "trainers": worker_trainers, "matmul": worker_matmul,
          "predict": worker_predict}[name]
    import warnings

    warnings.filterwarnings("ignore")
    result = fn(plan, **params)
    result["peak_rss_mib"] = peak_rss_mib()
    Path(out_path).write_text(json.dumps(result))


# --------------------------------------------------------------------------- parent


def launch(name: str, plan: dict[str, Any], params: dict[str, Any], workdir: Path, log: Path) -> dict[str, Any]:
    """Run one worker subprocess; its result plus the parent's view: wall time and load averages."""
    tag = f"{name}-{len(list(workdir.glob('*.spec.json')))}"
    spec_path, out_path = workdir / f"{tag}.spec.json", workdir / f"{tag}.out.json"
    spec_path.write_text(json.dumps({"plan": plan, "params": params}))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log, "a", encoding="utf-8") as sink:
        sink.write(f"\n===== {tag} {params}\n")
        sink.flush()
        child = subprocess.Popen([sys.executable, __file__, "--worker", name, str(spec_path), str(out_path)],
                                 stdout=sink, stderr=sink, cwd=REPO, env={**os.environ, "TQDM_DISABLE": "1"})
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = code = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if code != 0 or not out_path.is_file():
        raise SystemExit(f"worker {tag} failed (exit {code}); see {log}")
    result = json.loads(out_path.read_text())
    result.update(wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, load_before=load_before,
                  load_after=os.getloadavg()[0])
    return result


def schedule(plan: dict[str, Any], examples: int, steps: int) -> list[str]:
    """The task of each joint step, replayed from shopmtl's sampler (sizes = the subsampled train rows)."""
    from shopmtl.core.config import load_config
    from shopmtl.core.sampler import TaskSampler, task_probabilities

    config = load_config(None, shopmtl_overrides(plan, examples, steps, "/nonexistent", timed=False))
    sizes = {t: min(examples, plan["train_rows"][t]) for t in TASKS}
    weights = {t: config.tasks[t].sample_weight for t in TASKS if t in config.tasks}
    sampler = TaskSampler(sizes, task_probabilities(sizes, config.sampler, None, weights), config.training.batch_size,
                          config.seed)
    return [sampler.next()[0] for _ in range(steps)]


def train_rows() -> dict[str, int]:
    """Train rows of each task before subsampling, cached in the temp folder by the mtimes of the
    bundled data and of the built-in task plugins (building the four datasets takes ~10 s)."""
    import hashlib

    sources = [REPO / "plugins" / "data" / "online_retail_2010_2011.parquet", *sorted((REPO / "plugins").glob("*.py"))]
    key = hashlib.sha1(repr([(str(p), p.stat().st_mtime_ns) for p in sources if p.exists()]).encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"shopmtl_bench_train_rows_{key}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    from shopmtl.core.config import load_config
    from shopmtl.core.prepare import build_task_data
    from shopmtl.plugins.builtin import BUILTIN_PLUGINS
    from shopmtl.registry.manager import load_plugins

    config = load_config(None, ["tasks.recommend.settings.ranking_negatives=1"])
    plugins = load_plugins(BUILTIN_PLUGINS)
    rows = {t: len(build_task_data(plugins.tasks[t], config)["train"]) for t in TASKS}
    cache.write_text(json.dumps(rows))
    return rows


def machine() -> dict[str, Any]:
    import torch
    import transformers

    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    mem = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {"cpu": model, "nproc": os.cpu_count(), "ram_gib": round(mem / 1024**2, 1),
            "isa": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags],
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "torch_threads": torch.get_num_threads()}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(REPO))
        worker_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples-per-task", type=int, default=256, help="training rows of each task (default 256)")
    parser.add_argument("--max-length", type=int, default=128, help="token cap per text, and the Trainer's fixed padding")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=None,
                        help="joint steps (default: one epoch, 4 * examples / batch); the Trainer runs share them out")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads in every variant (default 1: robust beside other work; 0 = all cores)")
    parser.add_argument("--predict-rows", type=int, default=None, help="test rows per task to predict (default: examples)")
    parser.add_argument("--scale", default="1,4,16", help="row multipliers of the scale runs ('' to skip)")
    parser.add_argument("--scale-base", type=int, default=None, help="rows per task at 1x (default: examples / 8)")
    parser.add_argument("--skip", default="", help="comma-separated variants to leave out (e.g. trainer-fixed,scale)")
    parser.add_argument("--repeats", type=int, default=1, help="run shopmtl and plain this many times, interleaved; keep the best")
    parser.add_argument("--quick", action="store_true", help="a ~1.5 minute check that every variant runs: tiny sizes (8 steps of 8), no scale or CLI "
                             "runs; its ratios are noise")
    parser.add_argument("--json", type=Path, help="write every measurement and the table here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (run dirs, worker logs)")
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
    load = os.getloadavg()[0]
    if threads > 1 and load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} on {os.cpu_count()} cores: other processes compete for the cores, and "
              f"torch's {threads} OpenMP threads stall on each other when one of them is descheduled (10-25x slower "
              "small kernels measured here); pass --threads 1 for numbers that hold up beside other work", flush=True)
    plan = {
        "examples_per_task": examples, "max_length": args.max_length, "batch_size": args.batch_size, "steps": steps,
        "samples": steps * args.batch_size, "seed": 42, "precision": "bf16", "threads": threads,
        "eval_examples": 16 if args.quick else 64, "matmul_size": 2048 if args.quick else 4096,
        "matmul_repeats": 3 if args.quick else 5, "predict_repeats": 1 if args.quick else 2,
        "train_rows": train_rows(),
    }
    seq = schedule(plan, examples, steps)
    plan["task_steps"] = {t: seq.count(t) for t in TASKS}
    workdir = Path(tempfile.mkdtemp(prefix="shopmtl-bench-"))
    log = workdir / "workers.log"
    results: dict[str, Any] = {"plan": plan, "machine": machine(),
                               "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                               "command": " ".join([Path(sys.executable).name, *sys.argv]), "runs": {}, "loads": []}
    runs = results["runs"]
    print(f"scratch folder {workdir} (worker output in {log})", flush=True)
    print(f"plan: {steps} joint steps of {args.batch_size}; per task {plan['task_steps']}", flush=True)
    t_all = time.perf_counter()

    def step(label: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        print(f"  running {label} ...", end="", flush=True)
        out = launch(name, plan, params, workdir, log)
        results["loads"] += [out["load_before"], out["load_after"]]
        print(f" {out['wall_s']:.1f} s (load {out['load_before']:.1f} -> {out['load_after']:.1f})", flush=True)
        return out

    if "matmul" not in skip:
        runs["matmul"] = step("matmul peak", "matmul", {})
    run_dir = str(workdir / "run-shopmtl")
    for k in range(args.repeats):  # interleaved: shopmtl, plain, shopmtl, plain, ...
        out = step(f"1 shopmtl (#{k + 1})", "shopmtl", {"examples": examples, "steps": steps,
                                                        "output_dir": run_dir if k == 0 else str(workdir / f"run-{k}")})
        if "shopmtl" not in runs or out["loop_s"] < runs["shopmtl"]["loop_s"]:
            runs["shopmtl"] = {**out, "output_dir": run_dir}
        if "plain" not in skip:
            out = step(f"2 plain loop (#{k + 1})", "plain", {"examples": examples, "steps": steps})
            if "plain" not in runs or out["loop_s"] < runs["plain"]["loop_s"]:
                runs["plain"] = out
    if "plain" in runs and runs["plain"]["task_sequence"] != runs["shopmtl"]["task_sequence"]:
        raise SystemExit("the plain loop did not draw the same tasks as shopmtl's trainer: the comparison is void")
    if runs["shopmtl"]["task_sequence"] != seq:
        raise SystemExit("shopmtl drew other tasks than the replayed schedule: the Trainer runs would not match")
    for key, fixed, bf16 in (("trainer-fixed", True, False), ("trainer-best", False, True)):
        if key in skip:
            continue
        params = [{"examples": examples, "task": task, "steps": plan["task_steps"][task], "fixed": fixed, "bf16": bf16,
                   "output_dir": str(workdir / f"{key}-{task}")} for task in TASKS if plan["task_steps"][task]]
        if args.quick:  # one process for the four runs: less start-up, walls measured inside it
            out = step(f"3 {key} (4 tasks, one process)", "trainers", {"runs": params})
            per_task = [{**t, "peak_rss_mib": out["peak_rss_mib"]} for t in out["per_task"]]
        else:  # the usual way: one script, one process per task
            per_task = [step(f"3 {key} {p['task']}", "trainer", p) for p in params]
        runs[key] = {"per_task": per_task, "samples": sum(t["samples"] for t in per_task),
                     **{k: sum(t[k] for t in per_task) for k in ("loop_s", "loop_cpu_s", "wall_s", "cpu_s")},
                     "peak_rss_mib": max(t["peak_rss_mib"] for t in per_task)}
    if "predict" not in skip:
        inputs = workdir / "predict-inputs"
        inputs.mkdir()
        runs["predict"] = step("5 predict", "predict", {"run_dir": run_dir, "rows": args.predict_rows or examples,
                                                        "inputs_dir": str(inputs)})
        if "predict-cli" not in skip:
            runs["predict_cli"] = {}
            for task in TASKS:
                print(f"  running 5 shopmtl predict --task {task} ...", end="", flush=True)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "shopmtl.core.cli", "predict", run_dir, "--task", task,
                                "--input", str(inputs / f"{task}.parquet"), "--output", str(inputs / f"{task}.out.parquet")],
                               check=True, cwd=REPO, capture_output=True)
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
            out = step(f"6 scale {factor}x ({n} rows/task, {s} steps)", "shopmtl",
                       {"examples": n, "steps": s, "output_dir": str(workdir / f"scale-{factor}")})
            out.pop("task_sequence", None)
            runs["scale"].append({**out, "factor": factor, "examples": n})
    for key in ("shopmtl", "plain"):
        if key in runs:
            runs[key]["task_sequence"] = "".join(str(TASKS.index(t)) for t in runs[key]["task_sequence"])
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
