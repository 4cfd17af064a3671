"""Tiny in-test plugins and fake entry points for the registry's tests.

Plugins are types.ModuleType modules or classes with @hookimpl methods; entry points
are fakes with name/value/dist/load().
"""

from __future__ import annotations

import warnings

from kit_plugins import plugin  # noqa: F401 -- the registry tests build their plugins with it too
from shopmtl import TaskSpec
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.registry.manager import PluginWarning
from shopmtl.registry.validation import validate_task

# ----------------------------------------------------------------------------- helpers


def third_party_reports(plugins):
    """Reports of the plugins a test registered: shopmtl's own ("shopmtl") always loads first."""
    assert plugins.reports[0].name == "shopmtl" and plugins.reports[0].ok
    return plugins.reports[1:]


def task(name: str = "toy", **changes) -> TaskSpec:
    fields = dict(
        name=name,
        kind="regression",
        description="a toy task",
        text="description",
        labels=("label",),
        build_dataset=lambda ctx: None,
        metrics=lambda batch: {"mae": 0.0},
        metric_directions={"mae": "min"},
        primary_metric="mae",
    )
    fields.update(changes)
    return TaskSpec(**fields)


class FakeDist:
    def __init__(self, name: str, version: str) -> None:
        self.metadata = {"Name": name}
        self.version = version


class FakeEntryPoint:
    """Quacks like importlib.metadata.EntryPoint; ``load`` returns ``target`` or raises it."""

    def __init__(self, name: str, target, dist: FakeDist | None = None) -> None:
        self.name = name
        self.value = f"{name}_pkg.plugin"
        self.dist = dist
        self.target = target
        self.loaded = False

    def load(self):
        self.loaded = True
        if isinstance(self.target, BaseException):
            raise self.target
        return self.target


def quiet_load(*args, **kwargs):
    """load_plugins, returning (plugin set, [warning messages])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load_plugins(*args, **kwargs)
    return result, [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


def problems_of(spec: TaskSpec) -> str:
    found = validate_task(spec)
    assert found, "expected a problem"
    return "\n".join(found)
