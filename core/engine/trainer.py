"""Joint training of every task on one shared encoder, on accelerate.

The loop, in order: draw a task and a batch (:class:`TaskSampler`), encode the batch's
distinct texts once, apply the task's head and loss, scale by the task's weight,
backward; every ``gradient_accumulation_steps`` micro-batches clip and step. Every
``eval_every`` steps validate, keep the best model, save a resumable checkpoint and
stop early when the aggregate metric stops improving. At the end the best model is
evaluated on val and test beside the tasks' baselines.

:func:`train` is the recipe -- setup (:func:`start`, :func:`~shopmtl.core.engine.setup.build_run`),
resume (:mod:`shopmtl.core.runs.state`), the loop, written out here, and :func:`finish`; each
phase's details live in the module it names.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from tqdm.auto import tqdm

from shopmtl.core.config import Config, ConfigError
from shopmtl.core.data.prepare import PreparedTask, select_tasks
from shopmtl.core.engine.evaluate import final_scores, task_baselines
from shopmtl.core.engine.runtime import fresh_accelerator
from shopmtl.core.engine.setup import TrainingRun, build_run, launch
from shopmtl.core.engine.validation import validate
from shopmtl.core.model.batching import make_batch, to_device
from shopmtl.core.runs import checkpoint
from shopmtl.core.runs.rundir import check_output_dir, write_metrics
from shopmtl.core.runs.source import carry_over_heads
from shopmtl.core.runs.state import TrainState, load_checkpoint
from shopmtl.registry.blocks import DEFAULT_LOSSES
from shopmtl.registry.manager import PluginSet
from shopmtl.registry.spec import TaskSpec

log = logging.getLogger(__name__)


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


def start(config: Config, plugins: PluginSet, resume: bool,
          overwrite: bool) -> tuple[Path, dict[str, TaskSpec], Accelerator]:
    """The run's folder, its tasks and its Accelerator; the folder claimed, the seed set, the header printed."""
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
    return output_dir, specs, accelerator


def train(config: Config, plugins: PluginSet, *, resume: bool = False, overwrite: bool = False, progress: bool = True) -> TrainResult:
    """Train the config's tasks jointly and write the run directory: setup, resume, loop, finish."""
    output_dir, specs, accelerator = start(config, plugins, resume, overwrite)
    run = build_run(config, plugins, accelerator, output_dir, specs)
    config = run.config  # with --from: the source run's encoder settings
    state, last = TrainState(), output_dir / checkpoint.LAST_CHECKPOINT
    if resume and last.is_dir():
        state = load_checkpoint(last, run.core, run.optimizer, run.sampler, run.scheduler)
        run.say(f"resumed from {last} at step {state.step}")
    model = launch(run)

    total = config.training.max_steps
    running: dict[str, list[float]] = defaultdict(list)  # each task's training losses since the last log line
    since_eval: dict[str, list[float]] = defaultdict(list)  # ... and since the last validation
    bar = tqdm(total=total, initial=state.step, disable=not (progress and accelerator.is_local_main_process),
               desc="training", unit="step", dynamic_ncols=True)
    while state.step < total:
        for _ in range(config.training.gradient_accumulation_steps):
            with accelerator.accumulate(model):
                # Dropout noise as a function of (seed, draw): a resumed run replays it exactly.
                torch.manual_seed(config.seed * 1_000_003 + run.sampler.draws * 7919 + accelerator.process_index)
                name, index = run.sampler.next()
                task = run.tasks[name]
                batch = to_device(make_batch(task.rows["train"], index, run.bank, name in run.core.token_tasks),
                                  accelerator.device)
                _, task_loss, weighted_loss = model(name, batch, loss_function(task))
                accelerator.backward(weighted_loss)
                loss_value = float(task_loss.detach())
                running[name].append(loss_value)
                since_eval[name].append(loss_value)
                if run.surgery is not None:
                    run.surgery.capture(name)
                    if accelerator.sync_gradients:
                        run.surgery.apply(lambda g: accelerator.reduce(g, "mean"))
                if accelerator.sync_gradients and config.training.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.training.max_grad_norm)
                run.optimizer.step()
                run.optimizer.zero_grad(set_to_none=True)
        run.scheduler.step()
        state.step += 1
        bar.update(1)
        if state.step % config.training.log_every == 0:
            log_losses(accelerator, bar, running, state.step)
        if state.step % config.training.eval_every == 0 or state.step == total:
            if validate(run, state, since_eval):
                run.say(f"early stop at step {state.step}: no improvement in {state.bad_evals} evaluations")
                break
    bar.close()
    return finish(run, state)


def loss_function(task: PreparedTask):
    """The task's own loss, or its kind's masked default."""
    return task.spec.loss or DEFAULT_LOSSES[task.spec.kind]


def log_losses(accelerator: Accelerator, bar: tqdm, running: dict[str, list[float]], step: int) -> None:
    """Each task's mean training loss since the last log line, on the progress bar and to the trackers."""
    losses = {t: sum(v) / len(v) for t, v in running.items()}
    bar.set_postfix({t: f"{v:.3f}" for t, v in losses.items()})
    accelerator.log({f"train/{t}/loss": v for t, v in losses.items()}, step=step)
    running.clear()


def finish(run: TrainingRun, state: TrainState) -> TrainResult:
    """Reload the best model, carry over the source's heads, score it on val and test, write metrics.json."""
    accelerator, model_dir = run.accelerator, run.output_dir / checkpoint.MODEL_DIR
    main = accelerator.is_main_process
    checkpoint.load_weights(model_dir, run.core)
    if run.source is not None and main:
        carry_over_heads(run.source, run.core, model_dir, run.say)
    calibration, metrics = final_scores(accelerator, run.core, run.bank, run.tasks,
                                        run.config.training.eval_batch_size, run.plugins.metrics)
    if calibration and main:
        checkpoint.write_json(model_dir / checkpoint.CALIBRATION, calibration)
    run.plugins.notify("on_evaluation", run=run.info, step=state.best_step, split="test", metrics=metrics["test"])
    by_task = {name: {split: metrics[split][name] for split in metrics} for name in run.tasks}
    baselines = {name: task_baselines(task, "test") for name, task in run.tasks.items()} if main else {}
    if main:
        write_metrics(run.output_dir, state.best_step, state.step, by_task, baselines, state.history)
    accelerator.end_training()
    return TrainResult(run.output_dir, by_task, baselines, state.best_step, state.step, state.history)
