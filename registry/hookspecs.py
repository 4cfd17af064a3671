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

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from shopmtl.registry.contract import Register

PROJECT_NAME = "shopmtl"
ENTRY_POINT_GROUP = "shopmtl"

#: Version of the hook API described in this module. Bumped (major) when a hook is
#: removed or changes meaning; (minor) when a hook or an argument is added.
HOOK_API_VERSION = "1.0"

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
def on_run_start(run: RunInfo) -> None:
    """Called once, after the model is built and before the first training step.

    :param run: the run being started.

    .. versionadded:: 1.0
    """


@hookspec
def on_evaluation(run: RunInfo, step: int, split: str, metrics: Mapping[str, Mapping[str, Any]]) -> None:
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
