"""The throughput benchmark's workers: each variant runs in its own subprocess
(``throughput.py --worker NAME SPEC.json OUT.json``) and writes its measurements as JSON."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from throughput_common import (
    DTYPE_NAMES,
    TASKS,
    loop_seconds,
    matmul_peak,
    now,
    peak_rss_mib,
    shopmtl_overrides,
    task_frames,
    torch_dtype,
)
from throughput_trainer import worker_trainer, worker_trainers


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
        from shopmtl import hookimpl
        from torch import nn

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


def worker_shopmtl(
    plan: dict[str, Any], examples: int, steps: int, output_dir: str
) -> dict[str, Any]:
    """Variant 1: shopmtl's joint training through its public API."""
    started = now()
    import torch
    from shopmtl.core import api

    torch.set_num_threads(plan["threads"])
    imported = now()
    timer = _BenchTimer()
    plugins = api.load_plugins([("bench_timer", timer.make_plugin())], strict=True)
    config = api.load_config(None, shopmtl_overrides(plan, examples, steps, output_dir, timed=True))
    result = api.train(config, plugins, overwrite=True, progress=False)
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
        "final_eval_s": finished[0]
        - last[0]
        - loop_seconds(timer.stamps) / max(1, len(timer.stamps)),
        "final_eval_cpu_s": finished[1]
        - last[1]
        - loop_seconds(timer.stamps, 1) / max(1, len(timer.stamps)),
        "first_eval_at_s": (val[0] - last[0]) if val else None,
        "train_call_s": finished[0] - imported[0],
        "output_dir": output_dir,
    }


def worker_plain(plan: dict[str, Any], examples: int, steps: int) -> dict[str, Any]:
    """Variant 2: the same model and batches in a hand-written accelerate loop, nothing else."""
    import torch
    from accelerate import Accelerator
    from shopmtl.core import api

    torch.set_num_threads(plan["threads"])
    config, plugins = task_frames(plan, examples)
    parts = api.plain_training(config, plugins, steps)  # the default run's MMoE gates and heads
    model, batches = parts.model, parts.batches
    training = config.training
    groups = {
        (part, d): {"params": [], "lr": lr, "weight_decay": training.weight_decay if d else 0.0}
        for part, lr in (
            ("encoder", training.learning_rate),
            ("heads", training.head_learning_rate),
            ("wide", training.wide_learning_rate),
        )
        for d in (True, False)
    }
    wide = parts.wide
    for name, param in model.named_parameters():
        if param.requires_grad:
            part = (
                "encoder"
                if name.startswith("encoder.")
                else "wide"
                if id(param) in wide
                else "heads"
            )
            groups[(part, param.ndim >= 2 and "norm" not in name.lower())]["params"].append(param)
    optimizer = torch.optim.AdamW(
        [g for g in groups.values() if g["params"]], fused=True
    )  # as shopmtl
    warmup = max(1, int(steps * training.warmup_ratio))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / warmup if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup))
        ),
    )
    accelerator = Accelerator(cpu=True, mixed_precision=config.training.mixed_precision)
    model, optimizer = accelerator.prepare(model, optimizer)
    losses = parts.losses
    padded = [sum(int(ids.numel()) for ids, _ in parts.buckets(b)) for _, b in batches]
    real = [sum(int(mask.sum()) for _, mask in parts.buckets(b)) for _, b in batches]
    texts = [sum(int(ids.shape[0]) for ids, _ in parts.buckets(b)) for _, b in batches]
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
    non_embedding = sum(
        p.numel()
        for n, p in backbone.named_parameters()
        if not n.startswith(("embeddings.", "pooler."))
    )
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
    """Variant 4's denominator: the best of a few large square matmuls, FLOP/s, in the dtypes the run uses
    only: the resolved precision's and fp32 (the fixed-padding Trainer runs'). Never bf16 where the run
    is fp32: on a CPU that emulates bf16 its probe alone took over 12 minutes."""
    import torch

    torch.set_num_threads(plan["threads"])
    out = {}
    n = plan["matmul_size"]
    for precision in dict.fromkeys((plan["precision"], "no")):
        name = DTYPE_NAMES[precision]
        out[name], out[f"{name}_per_cpu_s"] = matmul_peak(
            torch_dtype(precision), n, plan["matmul_repeats"]
        )
    return {"peak_flops": out, "size": n}


def worker_predict(
    plan: dict[str, Any], run_dir: str, rows: int, inputs_dir: str
) -> dict[str, Any]:
    """Variant 5: ``predict_frame`` per task against a bare encoder forward over the same rows."""
    import numpy as np
    import torch
    from shopmtl.core import api
    from shopmtl.core.api import TextBank, predict_frame
    from transformers import AutoTokenizer

    torch.set_num_threads(plan["threads"])
    plugins = api.load_plugins()
    run = api.load_run(
        run_dir, plugins.tasks, precision=plan["precision"]
    )  # predict_frame in the run's precision
    tokenizer = AutoTokenizer.from_pretrained(Path(run_dir) / "model" / "backbone")
    encoder = (
        run.model.encoder.backbone
    )  # the run's own trained backbone, bare: no pooling module, no heads
    batch_size = run.config.training.eval_batch_size
    max_length = run.config.encoder.max_length
    dtype = torch_dtype(
        plan["precision"]
    )  # the run's resolved precision, as shopmtl's predict uses

    def bare(texts: list[str]) -> None:
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32),
        ):
            for start in range(0, len(texts), batch_size):
                tok = tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                hidden = encoder(**tok).last_hidden_state
                mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                _ = ((hidden * mask).sum(1).float() / mask.sum(1).float().clamp(min=1.0)).numpy()

    results = {}
    for task in TASKS:
        spec = plugins.tasks[task]
        test = api.build_task_data(spec, run.config)["test"]
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
            run.bank = TextBank(
                run.bank.tokenizer, max_length
            )  # a fresh bank: nothing tokenized yet
            t = now()
            predict_frame(run, task, frame)
            u = now()
            bare(texts)
            v = now()
            shop, shop_cpu = min(shop, u[0] - t[0]), min(shop_cpu, u[1] - t[1])
            plain, plain_cpu = min(plain, v[0] - u[0]), min(plain_cpu, v[1] - u[1])
        ids = run.bank.ids_for(texts)
        results[task] = {
            "rows": len(frame),
            "texts": len(texts),
            "distinct_texts": int(len(np.unique(ids))),
            "shopmtl_s": shop,
            "bare_s": plain,
            "shopmtl_cpu_s": shop_cpu,
            "bare_cpu_s": plain_cpu,
        }
    return {"tasks": results}


def worker_main(argv: list[str]) -> None:
    """``throughput.py --worker NAME SPEC.json OUT.json``: run one variant, write its result."""
    name, spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    plan, params = spec["plan"], spec["params"]
    fn = {
        "shopmtl": worker_shopmtl,
        "plain": worker_plain,
        "trainer": worker_trainer,
        "trainers": worker_trainers,
        "matmul": worker_matmul,
        "predict": worker_predict,
    }[name]
    import warnings

    warnings.filterwarnings("ignore")
    result = fn(plan, **params)
    result["peak_rss_mib"] = peak_rss_mib()
    Path(out_path).write_text(json.dumps(result))
