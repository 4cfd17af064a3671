"""Joint training of every task on one shared encoder, on accelerate.

The loop, in order: draw a task and a batch (:class:`TaskSampler`), encode the batch's
distinct texts once, apply the task's head and loss, scale by the task's weight,
backward; every ``gradient_accumulation_steps`` micro-batches clip and step. Every
``eval_every`` steps validate, keep the best model, save a resumable checkpoint and
stop early when the aggregate metric stops improving. At the end the best model is
evaluated on val and test beside the tasks' baselines.

:func:`train` is the recipe -- setup (:func:`start`, :func:`~shopmtl.core.engine.training_run.build_run`),
resume (:mod:`shopmtl.core.runs.state`), the loop, written out here, and :func:`finish`; each
phase's details live in the module it names.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs
from shopmtl.core.config import Config
from shopmtl.core.data.prepare import PreparedTask
from shopmtl.core.data.task_config import check_priors, select_tasks, skipped_plugins
from shopmtl.core.engine.evaluate import final_scores, task_baselines
from shopmtl.core.engine.guards import check_gradient_norm, check_loss
from shopmtl.core.engine.hardware import (
    Hardware,
    PrecisionChoice,
    detect_hardware,
    resolve_precision,
)
from shopmtl.core.engine.periodic_eval import validate
from shopmtl.core.engine.progress import RunProgress, evaluation_work, training_forward_passes
from shopmtl.core.engine.runtime import fresh_accelerator
from shopmtl.core.engine.tracking import log_final_metrics
from shopmtl.core.engine.training_run import TrainingRun, build_run, launch
from shopmtl.core.model.batching import batch_tokens, make_batch, to_device
from shopmtl.core.model.encoder import transformer_layers
from shopmtl.core.model.losses import DEFAULT_LOSSES
from shopmtl.core.runs import checkpoint, fsdp, manifest, transaction
from shopmtl.core.runs.fsdp import is_sharded, whole_weights
from shopmtl.core.runs.rundir import claim_output_dir, release_output_dir, write_metrics
from shopmtl.core.runs.source import carry_over_heads
from shopmtl.core.runs.state import TrainState, load_checkpoint
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


def make_accelerator(config: Config, output_dir: Path, precision: PrecisionChoice) -> Accelerator:
    """An Accelerator for the resolved precision and the config's accumulation and trackers."""
    return fresh_accelerator(
        # Without a GPU, say so: accelerate then runs several processes on CPU over gloo.
        cpu=not torch.cuda.is_available(),
        mixed_precision=precision.precision,
        gradient_accumulation_steps=config.training.gradient_accumulation_steps,
        log_with=config.training.log_with or None,
        project_dir=str(output_dir),
        kwargs_handlers=[
            # Each micro-batch trains one task, so the other heads get no gradient.
            DistributedDataParallelKwargs(find_unused_parameters=True),
            InitProcessGroupKwargs(timeout=timedelta(seconds=config.training.collective_timeout_s)),
        ],
    )


@dataclass(frozen=True)
class Machine:
    """What the run computes on, and the precision chosen for it (``environment.json``)."""

    hardware: Hardware
    precision: PrecisionChoice


def start(
    config: Config, plugins: PluginSet, resume: bool, overwrite: bool
) -> tuple[Path, dict[str, TaskSpec], Accelerator, Machine]:
    """The run's working folder, tasks, Accelerator and machine; the run directory claimed, the seed set,
    the header printed. The run is written into the working folder (:mod:`~shopmtl.core.runs.transaction`)
    and swapped in as the run directory by :func:`finish`."""
    output_dir = config.resolved_output_dir()
    specs = select_tasks(
        config.tasks or plugins.tasks, plugins.tasks, skipped_plugins(plugins)
    )  # none named: all
    check_priors(specs, config)  # a misnamed prior fails now, not after the data is built
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    hardware = detect_hardware()
    precision = resolve_precision(config.training.mixed_precision, hardware)
    work = transaction.work_dir(output_dir)
    accelerator = make_accelerator(config, work, precision)
    if accelerator.is_main_process:
        claim_output_dir(output_dir)
        _, resumable = transaction.open_run(output_dir, resume, overwrite)
        if resume and not resumable:
            accelerator.print(
                f"--resume: no complete checkpoint for {output_dir} (none was finished): training from scratch"
            )
    accelerator.wait_for_everyone()
    torch.manual_seed(config.seed)

    say = accelerator.print
    say(
        f"shopmtl run {output_dir} | processes: {accelerator.num_processes} | device: {accelerator.device} "
        f"| precision: {precision.precision} ({precision.reason})"
    )
    say(f"  hardware: {hardware.describe()}")
    for warning in precision.warnings:
        log.warning(warning)
        say(f"  WARNING: {warning}")
    for report in plugins.reports:
        if not report.error:
            say(f"  plugin {report.name} {report.version}: tasks {', '.join(report.tasks) or '-'}")
    return work, specs, accelerator, Machine(hardware, precision)


def train(
    config: Config,
    plugins: PluginSet,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train the config's tasks jointly and write the run directory: setup, resume, loop, finish."""
    started_at = time.perf_counter()
    output_dir, specs, accelerator, machine = start(config, plugins, resume, overwrite)
    run = build_run(
        config, plugins, accelerator, output_dir, specs, machine.hardware, machine.precision
    )
    config = run.config  # with --from: the source run's encoder settings
    run, model, state = launch_resumed(run, resume)
    total, timings = config.training.max_steps, {"setup_s": time.perf_counter() - started_at}
    # Each task's training losses since the last log line, and since the last validation.
    running: dict[str, list[float]] = defaultdict(list)
    since_eval: dict[str, list[float]] = defaultdict(list)
    bar = progress_bar(run, state, progress)
    while state.step < total:
        step_tokens = 0
        for _ in range(config.training.gradient_accumulation_steps):
            name, loss_value, tokens = micro_step(run, model, state)
            step_tokens += tokens
            running[name].append(loss_value)
            since_eval[name].append(loss_value)
        run.scheduler.step()
        state.step += 1
        bar.step_done(step_tokens)
        if state.step % config.training.log_every == 0:
            log_losses(accelerator, bar, running, state.step)
        if state.step % config.training.eval_every == 0 or state.step == total:
            validation_started, stop = time.perf_counter(), validate(run, state, since_eval)
            bar.validation_done(time.perf_counter() - validation_started)
            if stop:
                run.say(
                    f"early stop at step {state.step}: no improvement in {state.bad_evals} evaluations"
                )
                break
    bar.close()
    timings.update(
        validation_s=bar.validation_total,
        training_s=time.perf_counter() - started_at - timings["setup_s"] - bar.validation_total,
    )
    return finish(run, state, started_at, timings)


def launch_resumed(
    run: TrainingRun, resume: bool
) -> tuple[TrainingRun, torch.nn.Module, TrainState]:
    """The launched run, the model to train and the state to go on from (``--resume``: the last checkpoint)."""
    accelerator, state = run.accelerator, TrainState()
    last = run.output_dir / checkpoint.LAST_CHECKPOINT
    if resume and last.is_dir() and not is_sharded(accelerator):
        state = load_checkpoint(last, run.core, run.optimizer, run.sampler, run.scheduler)
        run.say(f"resumed from {last} at step {state.step}")
    run, model = launch(run)
    if resume and last.is_dir() and is_sharded(accelerator):  # into the shards prepare made
        state = fsdp.load_sharded_checkpoint(last, accelerator, run.sampler, run.scheduler)
        run.say(f"resumed from {last} at step {state.step} (sharded)")
    return run, model, state


def micro_step(
    run: TrainingRun, model: torch.nn.Module, state: TrainState
) -> tuple[str, float, int]:
    """One sampled batch forward and backward (the optimiser steps when accelerate syncs).

    Returns the batch's task, its unweighted loss and its token count.
    """
    accelerator, config = run.accelerator, run.config
    with accelerator.accumulate(model):
        # Dropout noise as a function of (seed, draw): a resumed run replays it exactly.
        torch.manual_seed(
            config.seed * 1_000_003 + run.sampler.draws * 7919 + accelerator.process_index
        )
        name, index = run.sampler.next()
        task = run.tasks[name]
        batch = to_device(
            make_batch(task.rows["train"], index, run.bank, name in run.core.token_tasks),
            accelerator.device,
        )
        _, task_loss, weighted_loss = model(name, batch, loss_function(task))
        accelerator.backward(weighted_loss)
        loss_value = float(task_loss.detach())
        check_loss(loss_value, name, state.step + 1, config)  # a NaN stops before any save
        if run.surgery is not None:
            run.surgery.capture(name)
            if accelerator.sync_gradients:
                run.surgery.apply(lambda g: accelerator.reduce(g, "mean"))
        if accelerator.sync_gradients and config.training.max_grad_norm:
            norm = accelerator.clip_grad_norm_(model.parameters(), config.training.max_grad_norm)
            check_gradient_norm(norm, state.step + 1, config)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    return name, loss_value, batch_tokens(batch)


def loss_function(task: PreparedTask):
    """The task's own loss, or its kind's masked default."""
    return task.spec.loss or DEFAULT_LOSSES[task.spec.kind]


def progress_bar(run: TrainingRun, state: TrainState, enabled: bool) -> RunProgress:
    """The bar over optimiser steps, with the whole run's time left (validations and final scoring priced in)."""
    encoder = run.core.encoder
    layers = transformer_layers(encoder.backbone)
    passes = training_forward_passes(
        len(layers) if layers is not None else 0,
        run.config.encoder.freeze_layers,
        encoder.prefix is not None,
    )
    work = evaluation_work(
        run.bank,
        [t.rows["val"] for t in run.validation_tasks.values()],
        [t.rows[s] for t in run.tasks.values() for s in ("val", "test")],
        passes,
    )
    return RunProgress(
        run.config.training.max_steps,
        state.step,
        run.config.training.eval_every,
        work,
        run.say,
        enabled=enabled and run.accelerator.is_local_main_process,
    )


def log_losses(
    accelerator: Accelerator, bar: RunProgress, running: dict[str, list[float]], step: int
) -> None:
    """Each task's mean training loss since the last log line, on the progress bar and to the trackers."""
    losses = {t: sum(v) / len(v) for t, v in running.items()}
    bar.show_losses(losses)
    accelerator.log({f"train/{t}/loss": v for t, v in losses.items()}, step=step)
    running.clear()


def finish(
    run: TrainingRun, state: TrainState, started_at: float, timings: dict[str, float]
) -> TrainResult:
    """Reload the best model, carry over the source's heads, score it on val and test, write metrics.json.

    ``started_at`` (the run's ``time.perf_counter()`` at its start) and ``timings`` (seconds
    per phase so far) complete the phase timings ``metrics.json`` records.
    """
    final_started = time.perf_counter()
    accelerator, model_dir = run.accelerator, run.output_dir / checkpoint.MODEL_DIR
    main = accelerator.is_main_process
    if is_sharded(accelerator):
        fsdp.load_full_weights(model_dir, run.core)
    else:
        checkpoint.load_weights(model_dir, run.core)
    if run.source is not None and main:
        carry_over_heads(
            run.source, run.core, model_dir, run.say, run.plugins.tasks, run.config.allow_pickle
        )
    with whole_weights(accelerator, run.core):
        calibration, metrics = final_scores(
            accelerator,
            run.core,
            run.bank,
            run.tasks,
            run.config.training.eval_batch_size,
            run.plugins.metrics,
        )
    if calibration and main:
        checkpoint.write_json(model_dir / checkpoint.CALIBRATION, calibration)
        manifest.write_manifest(model_dir)  # the model folder's own manifest lists it too
    run.plugins.notify(
        "on_evaluation", run=run.info, step=state.best_step, split="test", metrics=metrics["test"]
    )
    by_task = {name: {split: metrics[split][name] for split in metrics} for name in run.tasks}
    baselines_started = time.perf_counter()
    baselines = (
        {name: task_baselines(task, "test") for name, task in run.tasks.items()} if main else {}
    )
    now = time.perf_counter()
    timings.update(
        final_scoring_s=baselines_started - final_started,
        baselines_s=now - baselines_started,
        total_s=now - started_at,
    )
    if main:
        write_metrics(
            run.output_dir, state.best_step, state.step, by_task, baselines, state.history, timings
        )
    log_final_metrics(
        accelerator, run.config, by_task, baselines, state.best_step
    )  # training.log_with trackers
    # Every process reaches the teardown together. A process that tore the process group down
    # while gloo's worker thread was still releasing its last all-gather deadlocked: the teardown
    # joins that thread while holding the GIL the thread needs (a 2-process run hung after
    # metrics.json). Waiting here, with the GIL released, lets the worker finish first.
    accelerator.wait_for_everyone()
    accelerator.end_training()  # the trackers' files closed (and the process group destroyed): the folder can move
    if main:
        transaction.commit(
            run.output_dir, run.info.output_dir
        )  # complete: only now does it replace the run directory
        release_output_dir(run.info.output_dir)
    if run.scratch is not None:
        run.scratch.cleanup()  # the encoded train rows (a failed run's go when the process ends)
    return TrainResult(
        run.info.output_dir, by_task, baselines, state.best_step, state.step, state.history
    )
