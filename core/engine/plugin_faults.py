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
from collections.abc import Iterator
from pathlib import Path

from shopmtl.registry.pluginset import PluginSet
from shopmtl.registry.spec import TaskSpec


class PluginCodeError(RuntimeError):
    """An exception raised in a plugin's code, described with its task, plugin, file and line."""


def _code_files(spec: TaskSpec, plugin: object | None) -> set[Path]:
    """The source files of a task's callables and of its plugin object."""
    files: set[Path] = set()
    objects = [getattr(spec, f.name) for f in dataclasses.fields(spec)]
    for obj in [*objects, plugin]:
        if obj is None or isinstance(obj, (str, int, float, tuple, dict, list, type(None))):
            continue
        with contextlib.suppress(TypeError, OSError):
            target = obj if inspect.isfunction(obj) or inspect.ismodule(obj) or inspect.isclass(obj) else type(obj)
            files.add(Path(inspect.getfile(target)).resolve())
    return {f for f in files if "shopmtl/registry" not in f.as_posix() and "shopmtl/core" not in f.as_posix()}


def _where(error: BaseException, spec: TaskSpec, plugin: object | None) -> traceback.FrameSummary | None:
    """The deepest frame of ``error``'s traceback in the task's own files (or their folders)."""
    files = _code_files(spec, plugin)
    folders = {f.parent for f in files}
    frames = traceback.extract_tb(error.__traceback__)
    for match in (lambda p: p in files, lambda p: p.parent in folders):
        found = [frame for frame in frames if match(Path(frame.filename).resolve())]
        if found:
            return found[-1]
    return None


def describe(error: BaseException, plugins: PluginSet) -> str | None:
    """The words for ``error`` when it was raised in a task's code, else ``None``."""
    cause = error.__cause__ if error.__cause__ is not None and "build_dataset raised" in str(error) else error
    for name, spec in plugins.tasks.items():
        owner = plugins.task_plugin.get(name)
        frame = _where(cause, spec, plugins.pm.get_plugin(owner) if owner else None)
        if frame is None:
            continue
        version = next((r.version for r in plugins.reports if r.name == owner), "?")
        return (f"task '{name}' (plugin {owner} {version}): {type(cause).__name__} raised in the plugin's code at "
                f"{frame.filename}:{frame.lineno} (in {frame.name}): {cause} -- "
                f"`shopmtl plugins check {owner}` checks its data, labels and metrics; --debug shows the traceback")
    return None


@contextlib.contextmanager
def plugin_faults(plugins: PluginSet) -> Iterator[None]:
    """Re-raise an exception from a task's code as a :class:`PluginCodeError` that says where it came from."""
    try:
        yield
    except PluginCodeError:
        raise
    except Exception as error:  # noqa: BLE001 -- re-raised, in words when it is the plugin's
        words = describe(error, plugins)
        if words is None:
            raise
        raise PluginCodeError(words) from error
