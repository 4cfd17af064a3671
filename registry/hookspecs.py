"""Every hook a shopmtl plugin can implement, documented one by one.

A plugin is any module or object with functions decorated by ``@shopmtl.hookimpl``,
registered by shopmtl itself (the built-ins) or found through the ``shopmtl``
entry-point group of an installed distribution::

    # pyproject.toml of a plugin package
    [project.entry-points.shopmtl]
    returns = "shopmtl_returns.plugin"

    # shopmtl_returns/plugin.py
    from shopmtl import hookimpl

    @hookimpl
    def register_tasks(register):
        register(RETURNS_TASK)

An implementation may accept *fewer* arguments than the spec lists (pluggy passes only
the ones it names), so a hook gaining an argument never breaks an older plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
from shopmtl.registry.spec import (
    GradientSurgeryFactory,
    LossWeightingFactory,
    MetricSpec,
    Register,
    SamplerFactory,
    SharingFactory,
)

PROJECT_NAME = "shopmtl"
ENTRY_POINT_GROUP = "shopmtl"

#: Version of the hook API described in this module. Bumped (major) when a hook is
#: removed or changes meaning; (minor) when a hook or an argument is added, or the task
#: contract accepts more (1.3: ``TaskData`` splits may be Arrow or Parquet-backed; 1.4:
#: ``EvalBatch.score_stream`` scores extra rows handed over frame by frame, and
#: ``TaskSpec.priors`` offers classical models a head may start from; 1.5: ``Prior.state`` and
#: ``Prior.from_state`` save a fitted prior as arrays and JSON, never as a pickle).
HOOK_API_VERSION = "1.5"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@dataclass(frozen=True)
class RunInfo:
    """What hooks learn about the run they observe.

    Attributes:
        output_dir: the run directory (only the main process writes into it).
        config: the resolved configuration, as plain data.
        tasks: names of the tasks trained in this run.
        is_main_process: ``True`` on the process that writes files and logs.
    """

    output_dir: Path
    config: Mapping[str, Any]
    tasks: tuple[str, ...]
    is_main_process: bool


# ---------------------------------------------------------------- registration hooks
# Called once per plugin while shopmtl loads it: each hands shopmtl something to use by name.


@hookspec
def register_tasks(register: Register) -> None:
    """Register this plugin's tasks.

    Call ``register(TaskSpec(...))`` once per task. shopmtl validates each task at
    once (unique name, known kind, a head whose output fits its loss, declared metric
    directions); an invalid task is reported with the plugin's name and skipped.

    :param register: callback taking one :class:`shopmtl.TaskSpec`.

    .. versionadded:: 1.0
    """


@hookspec
def register_samplers(register: Callable[[str, SamplerFactory], None]) -> None:
    """Register task samplers: how often each task's batches come up.

    ``register(name, factory)``; ``factory(sizes, options)`` gets the number of train
    rows per task and the config's ``sampler.options`` and returns a probability per
    task. A run picks one with ``sampler.kind: NAME``. shopmtl's own
    ``proportional``, ``temperature`` and ``uniform`` are registered through this hook.

    :param register: callback taking a name and a sampler factory.

    .. versionadded:: 1.1
    """


@hookspec
def register_loss_weightings(register: Callable[[str, LossWeightingFactory], None]) -> None:
    """Register loss-weighting strategies that combine the tasks' losses.

    ``register(name, factory)``; ``factory(tasks, weights, options)`` returns an
    ``nn.Module`` whose ``forward(task, loss)`` gives the loss to back-propagate.
    Learnable weightings keep their parameters in that module. A run picks one with
    ``training.loss_weighting: NAME``. shopmtl's ``static`` and ``uncertainty``
    (Kendall et al., 2018) are registered through this hook.

    :param register: callback taking a name and a weighting factory.

    .. versionadded:: 1.1
    """


@hookspec
def register_sharing_kinds(register: Callable[[str, SharingFactory], None]) -> None:
    """Register ways for the tasks to share the encoder's pooled vector.

    ``register(name, factory)``; ``factory(tasks, width, options)`` gets the task names,
    the pooled vector's width and the config's ``sharing`` section (``experts``,
    ``task_experts``, ``expert_hidden`` and ``sharing.options``), and returns an
    ``nn.Module`` whose ``forward(task, pooled)`` gives the vector that task's head reads,
    of the same width -- or ``None`` for hard sharing. A run picks one with
    ``sharing.kind: NAME``. shopmtl's ``hard``, ``mmoe`` and ``ple`` are registered
    through this hook.

    :param register: callback taking a name and a sharing factory.

    .. versionadded:: 1.2
    """


@hookspec
def register_gradient_surgeries(register: Callable[[str, GradientSurgeryFactory], None]) -> None:
    """Register ways to combine the tasks' gradients on the shared parameters.

    ``register(name, factory)``; ``factory(shared, options)`` gets the shared parameters
    (encoder and sharing module) and ``training.gradient_surgery_options`` plus ``seed``,
    ``tasks`` and ``gradient_accumulation_steps``, and returns an object with
    ``capture(task)`` (called after each micro-batch's backward) and ``apply(reduce)``
    (called before the optimiser step), or ``None`` for plain summed gradients. Raise
    ``ValueError`` to refuse a configuration. A run picks one with
    ``training.gradient_surgery: NAME``. shopmtl's ``none`` and ``pcgrad`` are
    registered through this hook.

    :param register: callback taking a name and a gradient-surgery factory.

    .. versionadded:: 1.2
    """


@hookspec
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Add metrics to tasks, including tasks of other plugins.

    ``register(MetricSpec(task=..., name=..., direction=..., compute=...))``;
    ``compute`` receives the same :class:`~shopmtl.registry.spec.EvalBatch` as the
    task's own metrics. A metric for a task that is not in the run is ignored.

    :param register: callback taking a :class:`~shopmtl.registry.spec.MetricSpec`.

    .. versionadded:: 1.1
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add subcommands to the ``shopmtl`` command line.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(command)``. A
        plugin whose hook raises, or that reuses an existing command name, is
        reported by name and its commands are left out.

    .. versionadded:: 1.1
    """


# ------------------------------------------------------------------- run observers
# Called during a training run, in order; they watch and record, they do not change the run.


@hookspec
def on_run_start(run: RunInfo) -> None:
    """Called once, after the model is built and before the first training step.

    :param run: the run being started.

    .. versionadded:: 1.0
    """


@hookspec
def on_evaluation(
    run: RunInfo, step: int, split: str, metrics: Mapping[str, Mapping[str, Any]]
) -> None:
    """Called on every process after each evaluation, with metrics gathered across processes.

    :param run: the run.
    :param step: the optimiser step the evaluation followed.
    :param split: ``"val"`` or ``"test"``.
    :param metrics: ``{task name: {metric name: value}}``.

    .. versionadded:: 1.0
    """


@hookspec
def on_checkpoint_saved(run: RunInfo, path: Path, step: int) -> None:
    """Called on the main process after a checkpoint directory was written completely.

    :param run: the run.
    :param path: the checkpoint directory.
    :param step: the optimiser step it holds.

    .. versionadded:: 1.0
    """
