"""Everything a training run works with, built once before the loop: data, model, optimiser, sampler.

The order of :func:`build_run` fixes the run's random numbers (the encoder and heads are
initialised from the seed in this order), so a change here changes every result.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from shopmtl.core.config import Config
from shopmtl.core.data.partition import Shard
from shopmtl.core.data.prepare import Once, PreparedTask, call, prepare_task, validation_view
from shopmtl.core.data.scratch import scratch_folder
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.data.tokencache import TokenCache
from shopmtl.core.engine.collective import on_main_shared
from shopmtl.core.engine.environment import environment_record
from shopmtl.core.engine.hardware import Hardware, PrecisionChoice
from shopmtl.core.engine.optim import make_optimizer
from shopmtl.core.model.encoder import build_encoder, load_saved_tokenizer, load_tokenizer
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.mtl.sampler import TaskSampler, task_probabilities
from shopmtl.core.mtl.strategies import make_surgery, make_weighting
from shopmtl.core.runs import checkpoint
from shopmtl.core.runs.assemble import assemble_model
from shopmtl.core.runs.fsdp import check_sharding
from shopmtl.core.runs.rundir import write_environment, write_run_record
from shopmtl.core.runs.source import SourceRun, inherit_encoder, open_source
from shopmtl.registry.cachedir import cache_root
from shopmtl.registry.hookspecs import RunInfo
from shopmtl.registry.pluginset import PluginSet
from shopmtl.registry.spec import GradientSurgery, TaskSpec


@dataclass(frozen=True)
class TrainingRun:
    """What the training loop, validation and the finish share: the run's set-up, fixed once built.

    Frozen: :func:`launch` returns a new one with accelerate's wrapped optimiser and the
    gradient surgery. What changes while the run trains lives in
    :class:`~shopmtl.core.runs.state.TrainState` (step, history, sampler cursor).
    """

    config: Config  # as resolved for this run (``--from`` takes the source's encoder settings)
    plugins: PluginSet
    accelerator: Accelerator
    output_dir: Path  # where files are written: the run's working folder (core/runs/transaction.py)
    info: RunInfo  # what observer hooks receive
    tasks: dict[str, PreparedTask]
    bank: TextBank
    tokenizer: Any
    source: SourceRun | None  # the run this one started from (``--from``), if any
    core: MultiTaskModel  # the model itself, unwrapped (saving, evaluation)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: TaskSampler
    hardware: Hardware | None = None  # what the run computes on, and
    precision: PrecisionChoice | None = None  # the precision chosen for it (environment.json)
    #: The tasks as the periodic validations see them: val cut to ``training.validation_sample`` rows.
    validation_tasks: dict[str, PreparedTask] = field(default_factory=dict)
    surgery: GradientSurgery | None = None  # chosen by :func:`launch`
    #: Where this process's encoded train rows live (removed by ``cleanup()`` at the end, or when collected).
    scratch: tempfile.TemporaryDirectory | None = None

    def say(self, text: str) -> None:
        """Print on the main process only."""
        self.accelerator.print(text)


def build_run(
    config: Config,
    plugins: PluginSet,
    accelerator: Accelerator,
    output_dir: Path,
    specs: Mapping[str, TaskSpec],
    hardware: Hardware | None = None,
    precision: PrecisionChoice | None = None,
) -> TrainingRun:
    """Data, model, optimiser and sampler of a run, in the order that fixes its random numbers."""
    source = open_source(config.init_from, allow_pickle=config.allow_pickle, trained=specs)
    if source is not None:
        config = inherit_encoder(config, source.config)
    tokenizer = (
        load_tokenizer(config.encoder.name)
        if source is None
        else load_saved_tokenizer(source.backbone)
    )
    bank = TextBank(
        tokenizer, config.encoder.max_length, token_cache(tokenizer, config.encoder.max_length)
    )
    shard = Shard(accelerator.process_index, accelerator.num_processes)  # this process's train rows
    scratch = scratch_folder()  # this process's encoded train rows, memory-mapped
    tasks = prepare_tasks(
        specs,
        config,
        bank,
        accelerator.print,
        shard,
        Path(scratch.name),
        on_main_shared(accelerator),
    )
    model = build_training_model(config, plugins, tasks, bank, source, accelerator.print)
    optimizer, scheduler = make_optimizer(model, config)
    sampler = make_sampler(config, plugins, tasks, accelerator)
    # Hooks see the run directory; the files are written into its working folder (``output_dir``) until the end.
    info = RunInfo(
        output_dir=config.resolved_output_dir(),
        config=config.model_dump(mode="json"),
        tasks=tuple(tasks),
        is_main_process=accelerator.is_main_process,
    )
    validation_tasks = {
        n: validation_view(t, config.training.validation_sample, config.seed)
        for n, t in tasks.items()
    }
    return TrainingRun(
        config,
        plugins,
        accelerator,
        output_dir,
        info,
        tasks,
        bank,
        tokenizer,
        source,
        model,
        optimizer,
        scheduler,
        sampler,
        hardware,
        precision,
        validation_tasks,
        scratch=scratch,
    )


def token_cache(tokenizer: Any, max_length: int) -> TokenCache | None:
    """The on-disk token ids of this tokenizer and length (``SHOPMTL_TOKEN_CACHE=off``: none)."""
    if os.environ.get("SHOPMTL_TOKEN_CACHE", "on").lower() in ("off", "0", "false", "no"):
        return None
    return TokenCache.for_tokenizer(tokenizer, max_length, cache_root())


def prepare_tasks(
    specs: Mapping[str, TaskSpec],
    config: Config,
    bank: TextBank,
    say: Callable[[str], None],
    shard: Shard = Shard(),
    scratch: Path | None = None,
    once: Once = call,
) -> dict[str, PreparedTask]:
    """Each task's splits built, subsampled and encoded (train: ``shard``'s rows only, memory-mapped in
    ``scratch/<task>`` when given; priors fitted through ``once``), with a line on its size."""
    tasks: dict[str, PreparedTask] = {}
    for name, spec in specs.items():
        started = time.perf_counter()
        tasks[name] = task = prepare_task(
            spec,
            config,
            bank,
            shard=shard,
            scratch=scratch / name if scratch is not None else None,
            once=once,
        )
        sizes = " / ".join(
            f"{n:,}" for n in (task.train_rows, len(task.data["val"]), len(task.data["test"]))
        )
        share = "" if shard.whole else f" (each process trains on {len(task.rows['train']):,})"
        say(
            f"  task {name} ({spec.kind}): train/val/test rows {sizes}{share} [{time.perf_counter() - started:.1f}s]"
        )
    return tasks


def build_training_model(
    config: Config,
    plugins: PluginSet,
    tasks: Mapping[str, PreparedTask],
    bank: TextBank,
    source: SourceRun | None,
    say: Callable[[str], None],
) -> MultiTaskModel:
    """The encoder (the source run's, with ``--from``), the loss weighting, the sharing and the heads."""
    encoder = build_encoder(
        config.encoder, saved=source.backbone if source else None, tasks=list(tasks)
    )
    if source is not None:
        checkpoint.load_encoder(source.folder, encoder)
    weighting = make_weighting(config, plugins.loss_weightings, list(tasks))
    model = assemble_model(
        config,
        encoder,
        {n: t.spec for n, t in tasks.items()},  # specs as configured by their settings
        lambda name, width: tasks[name].head_spec(width, bank),
        plugins.sharing_kinds,
        weighting,
    )
    if source is not None:
        reused = checkpoint.load_matching_heads(source.folder, model)
        say(
            f"started from {source.folder}: encoder"
            + (f", heads {', '.join(reused)}" if reused else "")
        )
    return model


def data_sources(tasks: Mapping[str, PreparedTask]) -> list[str]:
    """The data files the tasks' rows were read from, each once, in task order."""
    return list(dict.fromkeys(source for task in tasks.values() for source in task.data.sources))


def make_sampler(
    config: Config, plugins: PluginSet, tasks: Mapping[str, PreparedTask], accelerator: Accelerator
) -> TaskSampler:
    """The task sampler over this process's share of the tasks' train rows.

    Task probabilities come from the *whole* train splits, so every process draws the same
    task for each micro-batch.
    """
    sizes = {n: t.train_rows for n, t in tasks.items()}
    return TaskSampler(
        {n: len(t.rows["train"]) for n, t in tasks.items()},
        task_probabilities(
            sizes,
            config.sampler,
            plugins.samplers,
            {n: t.config.sample_weight for n, t in tasks.items()},
        ),
        config.training.batch_size,
        config.seed,
        accelerator.process_index,
        groups={
            n: (t.rows["train"].text_ids, t.config.group_rows)
            for n, t in tasks.items()
            if t.config.group_rows
        },
    )


def launch(run: TrainingRun) -> tuple[TrainingRun, torch.nn.Module]:
    """Ready the run to step: gradient surgery, accelerate's wrapping, the run record, trackers, hooks.

    Returns the launched run (its optimiser and model as accelerate prepared them, its gradient
    surgery) and the model to train: accelerate's wrapper of ``run.core`` (the same module on
    one process).
    """
    config, accelerator = run.config, run.accelerator
    check_sharding(accelerator, config)
    surgery = make_surgery(config, run.plugins.gradient_surgeries, run.core, list(run.tasks))
    model, optimizer = accelerator.prepare(run.core, run.optimizer)
    run = replace(run, core=accelerator.unwrap_model(model), optimizer=optimizer, surgery=surgery)
    if accelerator.is_main_process:
        write_run_record(run.output_dir, config, run.plugins, run.tasks)
        if run.hardware is not None and run.precision is not None:
            write_environment(
                run.output_dir,
                environment_record(
                    run.precision, run.hardware, data_sources(run.tasks), accelerator.num_processes
                ),
            )
    if config.training.log_with:
        accelerator.init_trackers(config.run_name, config=flat_config(config))
    run.plugins.notify("on_run_start", run=run.info)
    if config.training.compile:
        # In place (nn.Module.compile): parameter names, and so checkpoints, stay unchanged.
        run.core.encoder.backbone.compile(backend=config.training.compile, dynamic=True)
        run.say(f"encoder compiled with torch.compile (backend {config.training.compile})")
    if run.core.cache_frozen_encoder():
        run.say("encoder frozen: each text is encoded once and its vector reused in later batches")
    elif (
        config.encoder.cache_frozen_layers
        and not config.training.compile
        and run.core.encoder.cache_frozen_prefix(config.encoder.freeze_layers)
    ):
        run.say(
            f"embeddings and the lowest {config.encoder.freeze_layers} layer(s) frozen: their output "
            "for each text is computed once and reused in later batches"
        )
    model.train()
    return run, model


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
