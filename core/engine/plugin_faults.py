"""Errors raised in a plugin's code, told in words: which task, which plugin, where, what.

A ``KeyError`` in a plugin's dataset builder used to reach the user as ``Error: reveiw``.
:func:`plugin_faults` wraps a command's work (``train``, ``data``): an exception whose
traceback runs through a task's own code becomes a :class:`PluginCodeError` naming the
task, the plugin and its version, the exception type, the plugin's file and line, and
the original message with its quotes, and pointing at ``shopmtl plugins check`` -- the
way that command reports the same fault. An error raised by shopmtl itself (a config
error, a missing file) passes through unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from shopmtl.core.data.prepare import TaskDataError
from shopmtl.registry.pluginset import PluginSet
from shopmtl.registry.spec import TaskSpec

_PACKAGE = Path(__file__).resolve().parents[2]  # the shopmtl package root
_SHOPMTL_OWN = (_PACKAGE / "core", _PACKAGE / "registry")


class PluginCodeError(RuntimeError):
    """An exception raised in a plugin's code, described with its task, plugin, file and line."""


def _callables(spec: TaskSpec, plugin: object | None) -> list[object]:
    """The task's own functions (builder, metrics, ...) and its plugin object."""
    found = [getattr(spec, f.name) for f in dataclasses.fields(spec)] + [plugin]
    return [obj for obj in found if callable(obj) or inspect.ismodule(obj)]


def _source(obj: object) -> Path | None:
    target = (
        obj
        if inspect.isfunction(obj) or inspect.ismodule(obj) or inspect.isclass(obj)
        else type(obj)
    )
    try:
        path = Path(inspect.getfile(target)).resolve()  # type: ignore[arg-type]
    except (TypeError, OSError):
        return None
    # shopmtl's own defaults (registry/, core/) are not the plugin's code; its built-in plugins are.
    return None if any(path.is_relative_to(own) for own in _SHOPMTL_OWN) else path


def _matchers(
    spec: TaskSpec, plugin: object | None
) -> list[Callable[[traceback.FrameSummary], bool]]:
    """Tests of a frame, strongest first: one of the task's functions, one of its files, under their folders."""
    objects = _callables(spec, plugin)
    codes = {
        (Path(o.__code__.co_filename).resolve(), o.__code__.co_name)
        for o in objects
        if inspect.isfunction(o)
    }
    files = {f for f in map(_source, objects) if f is not None}
    folders = {f.parent for f in files}
    return [
        lambda frame: (Path(frame.filename).resolve(), frame.name) in codes,
        lambda frame: Path(frame.filename).resolve() in files,
        # ... or a helper beside them (a plugin package's shared/ module).
        lambda frame: any(
            Path(frame.filename).resolve().is_relative_to(folder) for folder in folders
        ),
    ]


def describe(error: BaseException, plugins: PluginSet, tasks: Sequence[str] = ()) -> str | None:
    """The words for ``error`` when it was raised in a task's code, else ``None``.

    ``tasks``: the run's tasks, tried first (several tasks may share a plugin's files).
    """
    cause = (
        error.__cause__
        if error.__cause__ is not None and "build_dataset raised" in str(error)
        else error
    )
    frames = traceback.extract_tb(cause.__traceback__)
    named = [n for n in plugins.tasks if f"'{n}'" in str(error)]
    order = list(dict.fromkeys([*named, *tasks, *plugins.tasks]))
    matchers = {
        n: _matchers(plugins.tasks[n], _plugin(plugins, n)) for n in order if n in plugins.tasks
    }
    for strength in range(3):
        for name, tests in matchers.items():
            if any(tests[strength](frame) for frame in frames):
                deepest = [frame for frame in frames if any(test(frame) for test in tests)][-1]
                return _words(name, plugins, cause, deepest)
    return None


def _plugin(plugins: PluginSet, task: str) -> object | None:
    owner = plugins.task_plugin.get(task)
    return plugins.pm.get_plugin(owner) if owner else None


def _hook(spec: TaskSpec, frames: Sequence[traceback.FrameSummary]) -> str:
    """The task's function (``build_dataset``, ``metrics``, ...) the error went through, in words."""
    called = {(Path(f.filename).resolve(), f.name) for f in frames}
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if (
            inspect.isfunction(value)
            and (Path(value.__code__.co_filename).resolve(), value.__code__.co_name) in called
        ):
            return field.name
    return "its code"


def _words(
    task: str, plugins: PluginSet, cause: BaseException, frame: traceback.FrameSummary
) -> str:
    owner = plugins.task_plugin.get(task, "?")
    version = next((r.version for r in plugins.reports if r.name == owner), "?")
    hook = _hook(plugins.tasks[task], traceback.extract_tb(cause.__traceback__))
    return (
        f"task '{task}' (plugin {owner} {version}): {hook} raised {type(cause).__name__}: {cause} at "
        f"{frame.filename}:{frame.lineno} (in {frame.name}) -- `shopmtl plugins check {owner}` checks its data, "
        "labels and metrics; --debug shows the traceback"
    )


@contextlib.contextmanager
def plugin_faults(plugins: PluginSet, tasks: Sequence[str] = ()) -> Iterator[None]:
    """Re-raise an exception from a task's code as a :class:`PluginCodeError` that says where it came from."""
    try:
        yield
    except PluginCodeError:
        raise
    except Exception as error:  # noqa: BLE001 -- re-raised, in words when it is the plugin's
        words = describe(error, plugins, tasks)
        if words is not None:
            raise PluginCodeError(words) from error
        owner = plugins.task_plugin.get(getattr(error, "task", None) or "")
        if isinstance(error, TaskDataError) and owner is not None:
            raise error.for_plugin(owner) from error.__cause__  # shopmtl refused the data
        raise
