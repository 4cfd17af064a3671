"""Toy plugins for the plugin author's commands and kit: ``good`` (the two toy tasks of
tests/toy_tasks.py), ``broken_head`` (a regression task whose head outputs 3 columns, so
shopmtl skips the whole plugin at load time, with a second task that is fine on its own) and
``bad_data`` (registers fine, but its dataset has labels, columns and text a run would choke on).

The CLI tests pass the command a PluginSource of them (click's context object): ``toy_cli``.
"""

from __future__ import annotations

import types
import warnings

import pandas as pd
import pytest
import toy_tasks
from click.testing import CliRunner
from shopmtl import BuildContext, TaskData, TaskSpec, hookimpl
from shopmtl.core.cli import cli
from shopmtl.core.cli.common import PluginSource
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.testing import (
    shopmtl_plugins,  # noqa: F401 -- the fixture (a plugin's conftest.py uses pytest_plugins instead)
)
from torch import nn

# ------------------------------------------------------------------ toy plugins


class WrongWidth(nn.Module):
    """A head with 3 outputs: wrong for a regression task (it needs 1)."""

    def __init__(self, spec):
        super().__init__()
        self.linear = nn.Linear(spec.hidden_size, 3)

    def forward(self, x):
        return self.linear(x.text)


def plugin(name: str, *tasks: TaskSpec, **hooks) -> types.ModuleType:
    """A plugin module registering ``tasks``, plus any other ``@hookimpl`` functions given."""
    module = types.ModuleType(name)

    @hookimpl
    def register_tasks(register):
        for t in tasks:
            register(t)

    module.register_tasks = register_tasks
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def spec(name: str, **changes) -> TaskSpec:
    fields = dict(
        name=name,
        kind="regression",
        description="toy",
        text="text",
        labels=("value",),
        build_dataset=toy_tasks.build,
        metrics=toy_tasks.regression_metrics,
        metric_directions={"rmse": "min"},
        primary_metric="rmse",
    )
    fields.update(changes)
    return TaskSpec(**fields)


def bad_frames(ctx: BuildContext) -> TaskData:
    train = pd.DataFrame(
        {"text": ["red mug", "blue bag", None, "green card"], "flag": [0, 1, 2, 1]}
    )
    return TaskData(
        {"train": train, "val": train.drop(columns="flag"), "test": train.assign(flag=0.0)}
    )


BROKEN_HEAD = plugin(
    "broken_head",
    spec("wide_head", build_head=WrongWidth),
    spec("fine_alone"),
)
BAD_DATA_SPEC = spec(
    "bad_rows",
    kind="binary",
    labels=("flag",),
    build_dataset=bad_frames,
    metrics=toy_tasks.binary_metrics,
    metric_directions={"auc": "max", "accuracy": "max"},
    primary_metric="auc",
)
BAD_DATA = plugin("bad_data", BAD_DATA_SPEC)


def toy_set(ctx=None, config=None):
    """What `shopmtl` would load with these three plugins installed (lenient, no entry points)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # broken_head is skipped with a PluginWarning
        return load_plugins(
            [("good", toy_tasks), ("broken_head", BROKEN_HEAD), ("bad_data", BAD_DATA)], only=[]
        )


@pytest.fixture
def toy_cli(monkeypatch):
    """``shopmtl`` with the toy plugins; returns a function running it."""
    source = PluginSource(load=toy_set)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), obj=source)
