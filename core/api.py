"""The engine as a program drives it: configure, build task data, train, load a run, predict.

This is the public API of :mod:`shopmtl.core` for scripts and notebooks (``benchmarks/`` uses
nothing else); the API for plugin authors is :mod:`shopmtl` and :mod:`shopmtl.testing`.
Everything here keeps its name and signature within a minor version (see CHANGELOG.md's
version policy); the modules it re-exports from may move, so import from here::

    from shopmtl.core import api

    config = api.load_config(None, ["training.max_steps=50"])
    plugins = api.load_plugins()
    result = api.train(config, plugins, overwrite=True)
    run = api.load_run(config.output_dir, plugins.tasks)
    scored = api.predict_frame(run, "price_bin", frame)

It is a façade at the top of ``core/``: it may import any room of ``core/``, and nothing
in ``shopmtl`` imports it (an import-linter contract in pyproject.toml says so).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from shopmtl.core.config import (
    Config,
    ConfigError,
    EncoderConfig,
    TaskConfig,
    load_config,
    validate_config,
)
from shopmtl.core.data.prepare import PreparedTask, build_task_data, prepare_task, subsample
from shopmtl.core.data.priorfile import load_prior, save_prior
from shopmtl.core.data.priors import FittedPrior, checked_state
from shopmtl.core.data.tableio import write_table
from shopmtl.core.data.task_config import select_tasks
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.engine.evaluate import Scorer, eval_batches, to_plain
from shopmtl.core.engine.hardware import detect_hardware, resolve_precision
from shopmtl.core.engine.predict import LoadedRun, RunError, load_run, predict_frame
from shopmtl.core.engine.trainer import TrainResult, train
from shopmtl.core.model.batching import make_batch, text_buckets
from shopmtl.core.model.encoder import (
    build_encoder,
    load_tokenizer,
    resolve_encoder_path,
)
from shopmtl.core.model.heads import wide_parameters
from shopmtl.core.model.losses import DEFAULT_LOSSES
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.mtl.builtin import load_plugins as _load_plugins
from shopmtl.core.mtl.sampler import TaskSampler, task_probabilities
from shopmtl.core.runs.assemble import assemble_model
from shopmtl.core.runs.checkpoint import read_run_config
from shopmtl.plugins.builtin import BUILTIN_PLUGINS
from shopmtl.registry.derived import with_derived
from shopmtl.registry.pluginset import PluginSet
from shopmtl.registry.spec import EvalBatch, TaskSpec

__all__ = [
    # configuration
    "Config",
    "ConfigError",
    "EncoderConfig",
    "TaskConfig",
    "load_config",
    "read_run_config",
    "validate_config",
    # plugins and task data
    "PluginSet",
    "build_task_data",
    "load_plugins",
    "TaskSampler",
    "subsample",
    "task_probabilities",
    "with_derived",
    "write_table",
    # classical priors on disk (arrays and JSON, never a pickle)
    "FittedPrior",
    "checked_state",
    "load_prior",
    "save_prior",
    # training
    "TrainResult",
    "train",
    "PlainTraining",
    "plain_training",
    # a trained run
    "LoadedRun",
    "RunError",
    "load_run",
    "predict_frame",
    "export_onnx",
    "load_onnx",
    "score_split",
    "scorer",
    "to_plain",
    # the encoder and the machine
    "TextBank",
    "build_encoder",
    "detect_hardware",
    "embed_texts",
    "resolve_encoder_path",
    "resolve_precision",
]


def load_plugins(
    extra: Sequence[tuple[str, object]] = (),
    *,
    only: Iterable[str] | None = None,
    strict: bool = False,
) -> PluginSet:
    """shopmtl's own strategies and built-in tasks, then ``extra`` in-process plugins, then the
    installed entry points: the plugins the ``shopmtl`` command loads.

    :param extra: ``(name, plugin)`` pairs registered after the built-ins, e.g. an observer
        object with ``@hookimpl`` methods (``on_run_start``, ``on_evaluation``).
    :param only: entry-point plugins to load; ``[]`` loads none, ``None`` reads
        ``SHOPMTL_PLUGINS`` (all installed when unset), as the ``shopmtl`` command does.
    :param strict: raise on a broken plugin instead of reporting and skipping it.
    """
    return _load_plugins([*BUILTIN_PLUGINS, *extra], only=only, strict=strict)


def score_split(run: LoadedRun, split: str = "test") -> dict[str, EvalBatch]:
    """Each task's :class:`~shopmtl.EvalBatch` of ``split`` from a loaded run: its rows
    rebuilt with the run's settings and feature states, the model's predictions and labels,
    and the run's calibration (what ``shopmtl evaluate`` computes its metrics from)."""
    tasks = {
        name: prepare_task(spec, run.config, run.bank, state=run.features[name])
        for name, spec in run.specs.items()
    }
    scoring = Scorer(run.accelerator, run.model, run.bank, run.config.training.eval_batch_size)
    return dict(eval_batches(scoring, tasks, split, run.calibration))


def scorer(
    run: LoadedRun,
    engine: Literal["run", "fp32", "onnxruntime"] = "run",
    onnx: Any = None,
) -> Scorer:
    """What :func:`predict_frame` (``scorer=``) computes with: the run's model in the run's
    precision (``run``), the same model in float32 on the CPU (``fp32``), or the graphs of an
    ONNX export on onnxruntime (``onnxruntime``; ``onnx``: the folder ``shopmtl export
    --format onnx`` wrote, or what :func:`load_onnx` read from it; needs the ``onnx`` extra).

    A scorer caches each text's vector: build a new one for each independent measurement."""
    size = run.config.training.eval_batch_size
    if engine == "run":
        return Scorer(run.accelerator, run.model, run.bank, size)
    if engine == "fp32":
        from shopmtl.core.deploy.fp32 import Fp32Runtime

        return Scorer(Fp32Runtime(), run.model, run.bank, size)
    if engine == "onnxruntime":
        if onnx is None:
            raise ValueError("engine 'onnxruntime' needs onnx: the folder of an ONNX export")
        from shopmtl.core.deploy.onnx_engine import onnx_scorer

        return onnx_scorer(run, load_onnx(onnx) if isinstance(onnx, (str, Path)) else onnx)
    raise ValueError(f"unknown engine {engine!r}; choose run, fp32 or onnxruntime")


def export_onnx(run: LoadedRun, folder: str | Path) -> float:
    """Write ``run`` as ONNX graphs into ``folder`` (as ``shopmtl export --format onnx``) and
    return the largest absolute difference from PyTorch over the run's test rows."""
    from shopmtl.core.deploy.export_onnx import export_onnx as _export_onnx

    return _export_onnx(run, Path(folder))


def load_onnx(folder: str | Path) -> Any:
    """The ONNX graphs of an export folder on onnxruntime sessions, for :func:`scorer`."""
    from shopmtl.core.deploy.onnx_engine import load_onnx_model

    return load_onnx_model(folder)


def embed_texts(
    texts: Sequence[str], config: EncoderConfig | None = None, batch_size: int = 256
) -> np.ndarray:
    """Pooled, L2-normalised vectors of ``texts`` from the configured encoder (default: the
    default run's MiniLM), frozen and tokenized as a run tokenizes them."""
    config = config or EncoderConfig()
    encoder = build_encoder(config).eval()
    bank = TextBank(load_tokenizer(config.name), config.max_length)
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            ids, mask = bank.pad(bank.ids_for(list(texts[start : start + batch_size])))
            out.append(torch.nn.functional.normalize(encoder(ids, mask), dim=-1).numpy())
    return np.vstack(out)


@dataclass
class PlainTraining:
    """A run's untrained model and the micro-batches its trainer would draw, for timing a
    training step outside the trainer (``benchmarks/throughput.py``'s plain loop).

    Attributes:
        config: the configuration they come from.
        specs: the run's tasks, as configured.
        tasks: each task's prepared rows and feature state.
        model: the multi-task model (encoder, sharing, heads), freshly initialised.
        batches: ``(task, batch)`` per step, in the trainer's sampling order.
        losses: each task's default loss for its kind.
        wide: ``id()`` of the heads' linear ("wide") parameters, which train at
            ``training.wide_learning_rate``.
        bank: the token bank the batches' text ids refer to.
    """

    config: Config
    specs: dict[str, TaskSpec]
    tasks: dict[str, PreparedTask]
    model: MultiTaskModel
    batches: list[tuple[str, dict[str, torch.Tensor]]]
    losses: dict[str, Any]
    wide: set[int]
    bank: TextBank

    def buckets(self, batch: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The ``(input_ids, attention_mask)`` length buckets of one of :attr:`batches`."""
        return text_buckets(batch)


def plain_training(config: Config, plugins: PluginSet, steps: int) -> PlainTraining:
    """The model, prepared tasks and first ``steps`` micro-batches of a run of ``config``:
    the same sampler, seed, batches and model the trainer builds, without the trainer."""
    specs = select_tasks(config.tasks or plugins.tasks, plugins.tasks)
    bank = TextBank(load_tokenizer(config.encoder.name), config.encoder.max_length)
    tasks = {name: prepare_task(spec, config, bank) for name, spec in specs.items()}
    sizes = {n: len(t.rows["train"]) for n, t in tasks.items()}
    weights = {n: t.config.sample_weight for n, t in tasks.items()}
    sampler = TaskSampler(
        sizes,
        task_probabilities(sizes, config.sampler, plugins.samplers, weights),
        config.training.batch_size,
        config.seed,
        groups={
            n: (t.rows["train"].text_ids, t.config.group_rows)
            for n, t in tasks.items()
            if t.config.group_rows
        },
    )
    batches = []
    for _ in range(steps):
        name, index = sampler.next()
        rows = tasks[name].rows["train"]
        batches.append((name, make_batch(rows, index, bank, tasks[name].config.bag_of_words)))
    torch.manual_seed(config.seed)
    encoder = build_encoder(config.encoder)
    model = assemble_model(
        config,
        encoder,
        {n: t.spec for n, t in tasks.items()},
        lambda name, width: tasks[name].head_spec(width, bank),
        plugins.sharing_kinds,
    )
    return PlainTraining(
        config=config,
        specs=specs,
        tasks=tasks,
        model=model,
        batches=batches,
        losses={name: DEFAULT_LOSSES[spec.kind] for name, spec in specs.items()},
        wide={id(p) for p in wide_parameters(model)},
        bank=bank,
    )
