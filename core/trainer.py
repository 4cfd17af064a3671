"""Joint training of every task on one shared encoder, on accelerate.

The loop, in order: draw a task and a batch (:class:`TaskSampler`), encode the batch's
distinct texts once, apply the task's head and loss, scale by the task's weight,
backward; every ``gradient_accumulation_steps`` micro-batches clip and step. Every
``eval_every`` steps validate, keep the best model, save a resumable checkpoint and
stop early when the aggregate metric stops improving. At the end the best model is
evaluated on val and test beside the tasks' baselines.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from transformers import AutoTokenizer
from accelerate.utils import DistributedDataParallelKwargs
from tqdm.auto import tqdm

from shopmtl.core import checkpoint
from shopmtl.core.runtime import fresh_accelerator
from shopmtl.core.batching import make_batch, to_device
from shopmtl.core.config import Config, ConfigError, closest_key
from shopmtl.core.deploy.tracking import log_final_metrics
from shopmtl.core.gradients import PCGrad
from shopmtl.core.encoder import build_encoder, load_tokenizer
from shopmtl.core.evaluate import Scorer, calibrate, evaluate, selection_score, to_plain
from shopmtl.core.model import MultiTaskModel, build_model
from shopmtl.core.prepare import PreparedTask, prepare_task, select_tasks
from shopmtl.core.sharing import build_sharing
from shopmtl.core.sampler import TaskSampler, task_probabilities
from shopmtl.core.textbank import TextBank
from shopmtl.registry.blocks import DEFAULT_LOSSES, wide_parameters
from shopmtl.registry.hookspecs import RunInfo
from shopmtl.registry.manager import PluginSet

log = logging.getLogger(__name__)


class RunDirectoryError(RuntimeError):
    """The output directory holds another run; the message says how to proceed."""


@dataclass
class TrainResult:
    """What a finished run produced."""

    output_dir: Path
    metrics: dict[str, dict[str, dict[str, Any]]]  # task -> split -> metric -> value
    baselines: dict[str, dict[str, dict[str, Any]]]  # task -> baseline -> metric -> value
    best_step: int
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)


def make_accelerator(config: Config, output_dir: Path) -> Accelerator:
    """An Accelerator for the config's precision, accumulation and trackers."""
    if config.training.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("training.mixed_precision=fp16 needs a GPU; use bf16 (fast on recent CPUs) or no")
    return fresh_accelerator(
        # Without a GPU, say so: accelerate then runs several processes on CPU over gloo.
        cpu=not torch.cuda.is_available(),
        mixed_precision=config.training.mixed_precision,
        gradient_accumulation_steps=config.training.gradient_accumulation_steps,
        log_with=config.training.log_with or None,
        project_dir=str(output_dir),
        # Each micro-batch trains one task, so the other heads get no gradient.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def check_output_dir(output_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder: never lose a finished run by accident."""
    occupied = output_dir.is_dir() and any(output_dir.iterdir())
    if not occupied or overwrite:
        return
    if resume:
        if not (output_dir / checkpoint.LAST_CHECKPOINT).is_dir():
            raise RunDirectoryError(f"--resume: {output_dir} holds no checkpoint to resume from (no checkpoints/last)")
        return
    raise RunDirectoryError(
        f"{output_dir} already holds a run. Pass --resume to continue it, --overwrite to replace it, "
        "or choose another folder (--output-dir, or run_name=NAME)."
    )


def make_weighting(config: Config, plugins: PluginSet, tasks: list[str]) -> torch.nn.Module:
    """The configured loss weighting (``training.loss_weighting``), from the registered ones."""
    name = config.training.loss_weighting
    if name not in plugins.loss_weightings:
        hint = closest_key(name, plugins.loss_weightings)
        raise ConfigError(f"training.loss_weighting: no weighting named '{name}'"
                          + (f"; did you mean '{hint}'?" if hint else "")
                          + f" Registered: {', '.join(plugins.loss_weightings)}")
    weights = {t: config.tasks[t].weight if t in config.tasks else 1.0 for t in tasks}
    return plugins.loss_weightings[name](tasks, weights, dict(config.training.loss_weighting_options))


def inherit_encoder(config: Config, source_config: Config) -> Config:
    """The source run's encoder settings (the weights must fit them), keeping this run's freezing."""
    if source_config.encoder.lora.per_task:
        raise ConfigError(f"init_from {config.init_from}: that run has one LoRA adapter per task, so there is no "
                          "single encoder to start from; start from a run without encoder.lora.per_task")
    encoder = source_config.encoder.model_copy(
        update={"freeze": config.encoder.freeze, "freeze_embeddings": config.encoder.freeze_embeddings}
    )
    return config.model_copy(update={"encoder": encoder})


def loss_function(task: PreparedTask):
    """The task's own loss, or its kind's masked default."""
    return task.spec.loss or DEFAULT_LOSSES[task.spec.kind]


def param_groups(model: MultiTaskModel, config: Config) -> list[dict[str, Any]]:
    """AdamW groups: encoder, heads and the heads' wide paths each at their learning rate;
    no decay on biases and norms."""
    wide = {id(p) for p in wide_parameters(model)}
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = defaultdict(list)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "encoder" if name.startswith("encoder.") else "wide" if id(param) in wide else "heads"
        decay = param.ndim >= 2 and "norm" not in name.lower()
        groups[(part, decay)].append(param)
    rates = {"encoder": config.training.learning_rate, "heads": config.training.head_learning_rate,
             "wide": config.training.wide_learning_rate}
    return [
        {"params": params, "lr": rates[part], "weight_decay": config.training.weight_decay if decay else 0.0}
        for (part, decay), params in groups.items()
    ]


def warmup_linear(total_steps: int, warmup_ratio: float):
    """Learning-rate multiplier: linear warm-up, then linear decay to zero."""
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def train(config: Config, plugins: PluginSet, *, resume: bool = False, overwrite: bool = False, progress: bool = True) -> TrainResult:
    """Train the config's tasks jointly and write the run directory."""
    output_dir = config.resolved_output_dir()
    specs = select_tasks(config.tasks or plugins.tasks, plugins.tasks)  # none named: all
    accelerator = make_accelerator(config, output_dir)
    if accelerator.is_main_process:
        check_output_dir(output_dir, resume, overwrite)
    accelerator.wait_for_everyone()
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    torch.manual_seed(config.seed)

    say = accelerator.print
    say(f"shopmtl run {output_dir} | processes: {accelerator.num_processes} | device: {accelerator.device} "
        f"| precision: {config.training.mixed_precision}")
    for report in plugins.reports:
        if not report.error:
            say(f"  plugin {report.name} {report.version}: tasks {', '.join(report.tasks) or '-'}")

    source = checkpoint.source_model_dir(config.init_from) if config.init_from else None
    source_config = checkpoint.read_run_config(source.parent) if source is not None else None
    if source_config is not None:
        config = inherit_encoder(config, source_config)
    tokenizer = load_tokenizer(config.encoder.name) if source is None else AutoTokenizer.from_pretrained(source / "backbone")
    bank = TextBank(tokenizer, config.encoder.max_length)
    tasks: dict[str, PreparedTask] = {}
    for name, spec in specs.items():
        started = time.perf_counter()
        tasks[name] = prepare_task(spec, config, bank)
        sizes = " / ".join(f"{len(tasks[name].data[s]):,}" for s in ("train", "val", "test"))
        say(f"  task {name} ({spec.kind}): train/val/test rows {sizes} [{time.perf_counter() - started:.1f}s]")

    encoder = build_encoder(config.encoder, saved=source / "backbone" if source else None, tasks=list(tasks))
    if source is not None:
        checkpoint.load_encoder(source, encoder)
    weighting = make_weighting(config, plugins, list(tasks))
    sharing = build_sharing(config.sharing, list(tasks), encoder.hidden_size)
    model = build_model(encoder, {n: t.spec for n, t in tasks.items()},  # specs as configured by their settings
                        {n: t.head_spec(encoder.hidden_size, bank) for n, t in tasks.items()}, weighting, sharing)
    if source is not None:
        reused = checkpoint.load_matching_heads(source, model)
        say(f"started from {source}: encoder" + (f", heads {', '.join(reused)}" if reused else ""))
    # fused: one kernel per parameter group instead of several per tensor (CPU and GPU)
    optimizer = torch.optim.AdamW(param_groups(model, config), fused=True)
    total = config.training.max_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_linear(total, config.training.warmup_ratio))
    sizes = {n: len(t.rows["train"]) for n, t in tasks.items()}
    sampler = TaskSampler(
        sizes,
        task_probabilities(sizes, config.sampler, plugins.samplers, {n: t.config.sample_weight for n, t in tasks.items()}),
        config.training.batch_size,
        config.seed,
        accelerator.process_index,
        accelerator.num_processes,
        groups={n: (t.rows["train"].text_ids, t.config.group_rows) for n, t in tasks.items() if t.config.group_rows},
    )
    state = {"step": 0, "best_score": -math.inf, "best_step": 0, "bad_evals": 0, "history": []}
    last = output_dir / checkpoint.LAST_CHECKPOINT
    if resume and last.is_dir():
        checkpoint.load_weights(last, model)
        checkpoint.load_optimizer(last / "optimizer", optimizer)
        saved = checkpoint.read_json(last / "trainer_state.json")
        state.update({k: saved[k] for k in state})
        sampler.load_state_dict(saved["sampler"])
        scheduler.load_state_dict(saved["scheduler"])
        say(f"resumed from {last} at step {state['step']}")

    surgery = None
    if config.training.gradient_surgery == "pcgrad":
        if config.training.gradient_accumulation_steps < 2:
            raise ConfigError("training.gradient_surgery=pcgrad projects task gradients within one optimiser step: "
                              f"set training.gradient_accumulation_steps to at least 2 (e.g. {len(tasks)}, one per task)")
        shared = [p for n, p in model.named_parameters() if n.startswith(("encoder.", "sharing."))]
        surgery = PCGrad(shared, seed=config.seed)
    model, optimizer = accelerator.prepare(model, optimizer)
    core_model: MultiTaskModel = accelerator.unwrap_model(model)
    run = RunInfo(
        output_dir=output_dir,
        config=config.model_dump(mode="json"),
        tasks=tuple(tasks),
        is_main_process=accelerator.is_main_process,
    )
    if accelerator.is_main_process:
        checkpoint.write_yaml(output_dir / "config.yaml", config.model_dump(mode="json"))
        checkpoint.write_json(output_dir / "plugins.json", plugins_record(plugins, tasks))
    if config.training.log_with:
        accelerator.init_trackers(config.run_name, config=flat_config(config))
    plugins.notify("on_run_start", run=run)

    since_eval: dict[str, list[float]] = defaultdict(list)  # each task's training losses since the last validation

    def validate_and_checkpoint() -> bool:
        """Validate, keep the best model, save a resumable checkpoint; True = stop early."""
        metrics = evaluate(accelerator, core_model, bank, tasks, "val", config.training.eval_batch_size, plugins.metrics)
        score = selection_score(metrics, tasks, config.training.selection_metrics)
        improved = score > state["best_score"] or not state["history"]  # the first one always counts
        if improved:
            state.update(best_score=score, best_step=state["step"], bad_evals=0)
        else:
            state["bad_evals"] += 1
        state["history"].append({"step": state["step"], "score": score, "val": metrics,
                                 "train_loss": {t: sum(v) / len(v) for t, v in since_eval.items() if v}})
        since_eval.clear()
        accelerator.log({f"val/{t}/{k}": v for t, m in metrics.items() for k, v in m.items()
                         if isinstance(v, float)}, step=state["step"])
        plugins.notify("on_evaluation", run=run, step=state["step"], split="val", metrics=metrics)
        features = {n: t.state for n, t in tasks.items()}
        if accelerator.is_main_process:
            if improved:
                checkpoint.save_model_dir(output_dir / checkpoint.MODEL_DIR, core_model, features, tokenizer)
            with checkpoint.atomic_dir(last) as staging:
                checkpoint.write_model_files(staging, core_model, features, tokenizer)
                checkpoint.save_optimizer(staging / "optimizer", optimizer)
                checkpoint.write_json(staging / "trainer_state.json",
                                      {**state, "sampler": sampler.state_dict(), "scheduler": scheduler.state_dict()})
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            plugins.notify("on_checkpoint_saved", run=run, path=last, step=state["step"])
        say(f"step {state['step']}: val score {score:.4f}" + (" (best)" if improved else "") + " | "
            + " | ".join(f"{t} {tasks[t].spec.primary_metric}={m.get(tasks[t].spec.primary_metric)}" for t, m in metrics.items()))
        patience = config.training.early_stopping_patience
        return patience is not None and state["bad_evals"] >= patience

    if config.training.compile:
        # In place (nn.Module.compile): parameter names, and so checkpoints, stay unchanged.
        core_model.encoder.backbone.compile(backend=config.training.compile, dynamic=True)
        say(f"encoder compiled with torch.compile (backend {config.training.compile})")
    if core_model.cache_frozen_encoder():
        say("encoder frozen: each text is encoded once and its vector reused in later batches")
    model.train()
    running: dict[str, list[float]] = defaultdict(list)
    bar = tqdm(total=total, initial=state["step"], disable=not (progress and accelerator.is_local_main_process),
               desc="training", unit="step", dynamic_ncols=True)
    while state["step"] < total:
        for _ in range(config.training.gradient_accumulation_steps):
            with accelerator.accumulate(model):
                # Dropout noise as a function of (seed, draw): a resumed run replays it exactly.
                torch.manual_seed(config.seed * 1_000_003 + sampler.draws * 7919 + accelerator.process_index)
                name, index = sampler.next()
                task = tasks[name]
                batch = to_device(make_batch(task.rows["train"], index, bank, name in core_model.token_tasks),
                                  accelerator.device)
                _, task_loss, weighted_loss = model(name, batch, loss_function(task))
                accelerator.backward(weighted_loss)
                loss_value = float(task_loss.detach())
                running[name].append(loss_value)
                since_eval[name].append(loss_value)
                if surgery is not None:
                    surgery.capture(name)
                    if accelerator.sync_gradients:
                        surgery.apply(lambda g: accelerator.reduce(g, "mean"))
                if accelerator.sync_gradients and config.training.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.training.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        state["step"] += 1
        bar.update(1)
        if state["step"] % config.training.log_every == 0:
            losses = {t: sum(v) / len(v) for t, v in running.items()}
            bar.set_postfix({t: f"{v:.3f}" for t, v in losses.items()})
            accelerator.log({f"train/{t}/loss": v for t, v in losses.items()}, step=state["step"])
            running.clear()
        if state["step"] % config.training.eval_every == 0 or state["step"] == total:
            if validate_and_checkpoint():
                say(f"early stop at step {state['step']}: no improvement in {state['bad_evals']} evaluations")
                break
    bar.close()

    checkpoint.load_weights(output_dir / checkpoint.MODEL_DIR, core_model)
    if source is not None and accelerator.is_main_process:
        source_sharing = source_config.sharing.kind
        if any(p.requires_grad for p in core_model.encoder.parameters()) or core_model.sharing is not None:
            say(f"the shared representation was trained further, so the other heads of {source} were not carried "
                "over (set encoder.freeze=true, with sharing.kind=hard, to add tasks without changing it)")
        elif source_sharing != "hard":
            # Its heads read the source's gated experts, not the pooled vector this model gives them.
            say(f"{source.parent} shares its encoder through {source_sharing} gates, so its heads were not carried "
                "over (add tasks to a run trained with sharing.kind=hard, here with encoder.freeze=true)")
        else:
            carried = checkpoint.carry_heads(source, output_dir / checkpoint.MODEL_DIR)
            if carried:
                say(f"carried over unchanged heads from {source}: {', '.join(carried)}")
    # The final weights are fixed from here on: one Scorer encodes each text once for
    # calibration, val and test together (val's texts and the products every split shares).
    scorer = Scorer(accelerator, core_model, bank, config.training.eval_batch_size)
    calibration = calibrate(accelerator, core_model, bank, tasks, config.training.eval_batch_size, scorer)
    if calibration and accelerator.is_main_process:
        checkpoint.write_json(output_dir / checkpoint.MODEL_DIR / checkpoint.CALIBRATION, calibration)
    metrics = {split: evaluate(accelerator, core_model, bank, tasks, split, config.training.eval_batch_size,
                               plugins.metrics, calibration, scorer) for split in ("val", "test")}
    plugins.notify("on_evaluation", run=run, step=state["best_step"], split="test", metrics=metrics["test"])
    by_task = {name: {split: metrics[split][name] for split in metrics} for name in tasks}
    baselines = {name: task_baselines(task, "test") for name, task in tasks.items()} if accelerator.is_main_process else {}
    if accelerator.is_main_process:
        checkpoint.write_json(output_dir / "metrics.json", {
            "best_step": state["best_step"], "steps": state["step"], "tasks": by_task,
            "baselines": {"test": baselines}, "history": state["history"],
        })
    log_final_metrics(accelerator, config, by_task, baselines, state["best_step"])  # training.log_with trackers
    accelerator.end_training()
    return TrainResult(output_dir, by_task, baselines, state["best_step"], state["step"], state["history"])


def task_baselines(task: PreparedTask, split: str) -> dict[str, dict[str, Any]]:
    """The task's own baselines on ``split`` (none if it declares none)."""
    if task.spec.baselines is None:
        return {}
    return to_plain(dict(task.spec.baselines(task.data, split)))


def plugins_record(plugins: PluginSet, tasks: Mapping[str, PreparedTask]) -> dict[str, Any]:
    """``plugins.json``: every loaded plugin with its version, and which one owns each task."""
    return {
        "plugins": [r.to_dict() for r in plugins.reports],
        "tasks": {name: plugins.task_plugin.get(name) for name in tasks},
    }


def flat_config(config: Config) -> dict[str, Any]:
    """Config as flat ``section.key`` scalars, as trackers want it."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (int, float, str, bool)) or value is None:
            flat[prefix] = value
        else:
            flat[prefix] = str(value)

    walk("", config.model_dump(mode="json"))
    return flat
