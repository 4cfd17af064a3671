"""The plugin author's kit: shopmtl.testing, ``shopmtl plugins [check]`` and ``shopmtl new-plugin``.

The CLI tests pass the command a PluginSource of toy plugins (click's context object):
``good`` (the two toy tasks of tests/toy_tasks.py), ``broken_head`` (a regression task
whose head outputs 3 columns, so shopmtl skips the whole plugin at load time, with a
second task that is fine on its own) and ``bad_data`` (registers fine, but its dataset
has labels, columns and text a run would choke on).
"""

from __future__ import annotations

import json
import types
import warnings

import numpy as np
import pandas as pd
import pytest
import toy_tasks
from click.testing import CliRunner
from torch import nn

from shopmtl.core.cli.common import PluginSource
from shopmtl import BuildContext, TaskData, TaskSpec, hookimpl
from shopmtl.core import cli as cli_module
from shopmtl.core.cli import common
from shopmtl.core.cli import cli
from shopmtl.registry.manager import ENV_PLUGINS, ENV_STRICT, PluginError, load_plugins
from shopmtl.testing import (
    assert_valid_task,
    check_task,
    load_plugin_set,
    plugin_source,
    registered_plugin,
    run_cli,
    shopmtl_plugins,  # noqa: F401 -- the fixture (a plugin's conftest.py uses pytest_plugins instead)
    train_briefly,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(ENV_PLUGINS, raising=False)
    monkeypatch.delenv(ENV_STRICT, raising=False)


# ------------------------------------------------------------------ toy plugins


class WrongWidth(nn.Module):
    """A head with 3 outputs: wrong for a regression task (it needs 1)."""

    def __init__(self, spec):
        super().__init__()
        self.linear = nn.Linear(spec.hidden_size, 3)

    def forward(self, x):
        return self.linear(x.text)


def plugin_module(name: str, *specs: TaskSpec) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def register_tasks(register):
        for spec in specs:
            register(spec)

    module.register_tasks = register_tasks
    return module


def spec(name: str, **changes) -> TaskSpec:
    fields = dict(
        name=name, kind="regression", description="toy", text="text", labels=("value",),
        build_dataset=toy_tasks.build, metrics=toy_tasks.regression_metrics,
        metric_directions={"rmse": "min"}, primary_metric="rmse",
    )
    fields.update(changes)
    return TaskSpec(**fields)


def bad_frames(ctx: BuildContext) -> TaskData:
    train = pd.DataFrame({"text": ["red mug", "blue bag", None, "green card"], "flag": [0, 1, 2, 1]})
    return TaskData({"train": train, "val": train.drop(columns="flag"), "test": train.assign(flag=0.0)})


BROKEN_HEAD = plugin_module(
    "broken_head",
    spec("wide_head", build_head=WrongWidth),
    spec("fine_alone"),
)
BAD_DATA_SPEC = spec(
    "bad_rows", kind="binary", labels=("flag",), build_dataset=bad_frames,
    metrics=toy_tasks.binary_metrics, metric_directions={"auc": "max", "accuracy": "max"}, primary_metric="auc",
)
BAD_DATA = plugin_module("bad_data", BAD_DATA_SPEC)


def toy_set(ctx=None, config=None):
    """What `shopmtl` would load with these three plugins installed (lenient, no entry points)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # broken_head is skipped with a PluginWarning
        return load_plugins([("good", toy_tasks), ("broken_head", BROKEN_HEAD), ("bad_data", BAD_DATA)], only=[])


@pytest.fixture
def toy_cli(monkeypatch):
    """``shopmtl`` with the toy plugins; returns a function running it."""
    source = PluginSource(load=toy_set)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), obj=source)


# ------------------------------------------------------------- shopmtl plugins


def test_plugins_still_lists_every_plugin(toy_cli):
    result = toy_cli("plugins")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["plugin", "version", "source", "hooks", "tasks", "status"]
    good = next(line for line in lines if line.startswith("good "))
    assert "toy_value, toy_flag" in good and good.rstrip().endswith("ok")
    broken = next(line for line in lines if line.startswith("broken_head "))
    assert "registered invalid task(s)" in broken

    as_json = json.loads(toy_cli("plugins", "--json").output)
    by_name = {r["name"]: r for r in as_json}
    assert by_name["good"]["tasks"] == ["toy_value", "toy_flag"] and by_name["good"]["error"] is None
    assert by_name["broken_head"]["error"] and by_name["bad_data"]["error"] is None


def test_check_a_good_plugin(toy_cli):
    result = toy_cli("plugins", "check", "good")
    assert result.exit_code == 0, result.output
    assert "plugin good" in result.output
    assert "task toy_value: ok" in result.output and "task toy_flag: ok" in result.output


def test_check_a_plugin_skipped_at_load_names_the_task_and_the_fix(toy_cli):
    result = toy_cli("plugins", "check", "broken_head")
    assert result.exit_code == 1
    out = result.output
    assert "skipped when shopmtl loaded it" in out
    assert "task 'wide_head'" in out
    assert "head returned shape (4, 3) but kind 'regression' needs (4, 1)" in out
    assert "fix them, then run `shopmtl plugins check broken_head` again" in out


def test_check_reads_a_skipped_plugins_tasks_one_by_one_when_it_can(monkeypatch):
    # registered_plugin keeps the plugin object, so each task is checked on its own.
    with pytest.warns(UserWarning), registered_plugin(BROKEN_HEAD, name="broken_head", strict=False):
        result = run_cli("plugins", "check", "broken_head")
    assert result.exit_code == 1
    out = result.output
    assert "its tasks, checked one by one" in out
    assert "task wide_head: 1 problem" in out and "head returned shape (4, 3)" in out
    assert "task fine_alone: ok" in out


def test_check_reimports_a_skipped_entry_point_plugin(tmp_path, monkeypatch):
    import importlib.metadata

    (tmp_path / "wide_plugin.py").write_text(
        "from torch import nn\n"
        "from shopmtl import TaskSpec, hookimpl\n"
        "import toy_tasks\n"
        "class Wide(nn.Module):\n"
        "    def __init__(self, spec):\n"
        "        super().__init__(); self.linear = nn.Linear(spec.hidden_size, 2)\n"
        "    def forward(self, x):\n"
        "        return self.linear(x.text)\n"
        "@hookimpl\n"
        "def register_tasks(register):\n"
        "    register(TaskSpec(name='wide', kind='regression', description='', text='text', labels=('value',),\n"
        "                      build_dataset=toy_tasks.build, metrics=toy_tasks.regression_metrics,\n"
        "                      metric_directions={'rmse': 'min'}, primary_metric='rmse', build_head=Wide))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint(name="wide", value="wide_plugin", group="shopmtl")
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: [ep] if kw.get("group") == "shopmtl" else real(**kw))

    def installed(ctx, config=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_plugins((), entry_points=[ep])

    source = PluginSource(load=installed)
    result = CliRunner().invoke(cli, ["plugins", "check", "wide"], obj=source)
    assert result.exit_code == 1
    assert "plugin wide unknown (entry point)" in result.output
    assert "task wide: 1 problem" in result.output and "head returned shape (4, 2)" in result.output


def test_check_builds_the_data_with_a_configs_settings(toy_cli, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("tasks:\n  toy_value:\n    settings: {rowz: 30}\n")
    result = toy_cli("plugins", "check", "good", "--config", str(config))
    assert result.exit_code == 1
    assert "task toy_value: 1 problem" in result.output
    assert "unknown key 'tasks.toy_value.settings.rowz': did you mean 'rows'?" in result.output
    assert "task toy_flag: ok" in result.output
    fixed = toy_cli("plugins", "check", "good", "--config", str(config), "tasks.toy_value.settings={rows: 30}")
    assert fixed.exit_code == 0, fixed.output


def test_check_reports_data_problems_a_run_would_hit(toy_cli):
    result = toy_cli("plugins", "check", "bad_data")
    assert result.exit_code == 1
    out = result.output
    assert "task bad_rows: " in out and "problems" in out
    assert "text column 'text' of the train split is not a string on 1 row (e.g. NaN)" in out
    assert "label column 'flag' of the train split is not 0 or 1 on 1 row (e.g. 2.0)" in out
    assert "the val split lacks column(s) 'flag'" in out


def test_check_without_data_runs_the_registration_checks_only(toy_cli):
    result = toy_cli("plugins", "check", "bad_data", "--no-data")
    assert result.exit_code == 0, result.output
    assert "task bad_rows: ok (registration checks only: --no-data)" in result.output


def test_check_an_unknown_plugin_lists_the_installed_ones_and_the_closest(toy_cli):
    result = toy_cli("plugins", "check", "god")
    assert result.exit_code == 1
    assert "no plugin named 'god' is installed" in result.output
    assert "Did you mean 'good'?" in result.output
    assert "good, broken_head, bad_data" in result.output


def test_check_a_task_name_points_at_its_plugin(toy_cli):
    result = toy_cli("plugins", "check", "toy_value")
    assert result.exit_code == 1
    assert "'toy_value' is a task, not a plugin: it belongs to plugin 'good'" in result.output


def test_check_a_blocked_plugin_says_so(monkeypatch):
    def blocked_set(ctx, config=None):
        options = ctx.find_root().params
        return load_plugins([("good", toy_tasks)], only=[], blocked=options.get("block") or ())

    source = PluginSource(load=blocked_set)
    result = CliRunner().invoke(cli, ["--block", "good", "plugins", "check", "good"], obj=source)
    assert result.exit_code == 1
    assert "plugin 'good' is available but was not loaded (blocked)" in result.output


# -------------------------------------------------------------------- check_task


def test_check_task_passes_a_good_task():
    assert check_task(toy_tasks.TOY_REGRESSION) == []
    assert check_task(toy_tasks.TOY_REGRESSION, settings={"rows": 30}) == []
    assert check_task(toy_tasks.TOY_REGRESSION, settings=toy_tasks.ToySettings(rows=30)) == []
    (problem,) = check_task(toy_tasks.TOY_REGRESSION, settings={"rowz": 30})
    assert "unknown key 'tasks.toy_value.settings.rowz': did you mean 'rows'?" in problem
    assert "takes no settings" in check_task(toy_tasks.TOY_BINARY, settings={"rows": 30})[0]
    assert_valid_task(toy_tasks.TOY_REGRESSION, data=False)


def test_check_task_reports_registration_problems_first():
    problems = check_task(spec("wide", build_head=WrongWidth))
    assert len(problems) == 1 and "head returned shape (4, 3)" in problems[0]
    assert "not a TaskSpec" in check_task({"name": "x"})[0]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"build_dataset": lambda ctx: 1 / 0}, "build_dataset raised ZeroDivisionError"),
        ({"build_dataset": lambda ctx: {"train": None}}, "not a TaskData"),
        (
            {"build_dataset": lambda ctx: TaskData({"train": toy_tasks.build(ctx)["train"]})},
            "returned no 'val', 'test' split",
        ),
        (
            {"metrics": lambda batch: {"rmse": 1.0, "mae": 2.0}},
            "metrics returned 'mae', which metric_directions does not declare",
        ),
        ({"metrics": lambda batch: {}}, "metrics returned no 'rmse'"),
        ({"metrics": lambda batch: {"rmse": "low"}}, "metric 'rmse' returned 'low'"),
        ({"baselines": lambda data, split: 1 / 0}, "baselines raised ZeroDivisionError"),
        (
            {"build_dataset": lambda ctx: TaskData({s: toy_tasks.build(ctx)[s].assign(value=np.inf) for s in ("train", "val", "test")})},
            "label column 'value' of the train split is infinite on 240 rows",
        ),
    ],
)
def test_check_task_reports_data_and_metric_problems(changes, expected):
    problems = check_task(spec("toy", **changes))
    assert any(expected in p for p in problems), problems


def test_check_task_multiclass_labels_must_be_class_indexes():
    def build(ctx):
        frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["small", 1, 5]})
        return TaskData({"train": frame, "val": frame, "test": frame})

    task = spec("sizes", kind="multiclass", classes=("s", "m", "l"), labels=("label",), build_dataset=build)
    (problem, *_) = check_task(task)
    assert "label column 'label' of the train split is not a number on 1 row (e.g. 'small')" in problem
    assert "the class index, not its name" in problem

    def build_indexes(ctx):
        frame = pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 5]})
        return TaskData({"train": frame, "val": frame, "test": frame})

    problems = check_task(dataclass_replace(task, build_dataset=build_indexes))
    assert any("is not a class index 0..2 on 1 row (e.g. 5.0)" in p for p in problems), problems


def dataclass_replace(task, **changes):
    import dataclasses

    return dataclasses.replace(task, **changes)


def test_assert_valid_task_lists_every_problem():
    with pytest.raises(AssertionError) as error:
        assert_valid_task(BAD_DATA_SPEC)
    message = str(error.value)
    assert message.startswith("task 'bad_rows' has 4 problems:")  # text (train, val), label, column
    assert message.count("\n  - ") == 4



# ------------------------------------------------------------ plugin sets, fixture


def test_load_plugin_set_is_hermetic_and_strict(monkeypatch):
    monkeypatch.setenv(ENV_PLUGINS, "not_installed")  # would fail strict loading if read
    plugins = load_plugin_set(toy_tasks, name="toy")
    assert plugins.task_plugin == {"toy_value": "toy", "toy_flag": "toy"}
    assert [r.source for r in plugins.reports if r.name != "shopmtl"] == ["builtin"]
    with pytest.raises(PluginError, match="wide_head"):
        load_plugin_set(BROKEN_HEAD)


def test_registered_plugin_lasts_for_the_block_only():
    with registered_plugin(toy_tasks, name="toy") as plugins:
        assert "toy_value" in plugins.tasks
        listed = json.loads(run_cli("plugins", "--json").output)
        assert [r["name"] for r in listed] == ["shopmtl", "toy"]
    # The kit passes its plugins in click's context object: nothing in the CLI was replaced.
    assert cli_module.plugin_set is common.plugin_set
    after = json.loads(run_cli("plugins", "--json", env={"SHOPMTL_PLUGINS": ""}).output)
    assert "toy" not in [r["name"] for r in after]


def test_a_plugin_source_passed_as_context_object_reaches_the_command():
    result = CliRunner().invoke(cli, ["plugins", "--json"], obj=plugin_source(toy_tasks, name="toy"))
    assert [r["name"] for r in json.loads(result.output)] == ["shopmtl", "toy"]


def test_shopmtl_plugins_fixture_registers_for_one_test(shopmtl_plugins):
    plugins = shopmtl_plugins(toy_tasks, name="toy")
    assert set(plugins.tasks) == {"toy_value", "toy_flag"}
    assert run_cli("plugins", "check", "toy").exit_code == 0


def test_the_fixtures_plugin_is_gone_in_the_next_test():
    listed = json.loads(run_cli("plugins", "--json", env={"SHOPMTL_PLUGINS": ""}).output)
    assert "toy" not in [r["name"] for r in listed]


# ------------------------------------------------------------------ train_briefly


def test_train_briefly_trains_the_plugins_tasks(tmp_path):
    result = train_briefly(toy_tasks, steps=4, tmp_path=tmp_path, max_examples=32)
    assert set(result.metrics) == {"toy_value", "toy_flag"}
    assert result.steps == 4
    assert result.metrics["toy_value"]["test"]["rmse"] is not None
    assert set(result.metrics["toy_flag"]["val"]) == {"auc", "accuracy"}
    assert (tmp_path / "train_briefly.yaml").is_file() and (tmp_path / "run" / "metrics.json").is_file()


def test_train_briefly_names_unknown_tasks(tmp_path):
    with pytest.raises(ValueError, match="'sales' are not registered by these plugins"):
        train_briefly(toy_tasks, tasks=["sales"], tmp_path=tmp_path)


# ---------------------------------------------------------------- new-plugin (CLI)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Gift-Wrap", "plugin name 'Gift-Wrap' is not valid"),
        ("gift_", "(e.g. 'gift')"),
        ("sales", "plugin name 'sales' is taken by a built-in task"),
        ("shopmtl", "taken by a built-in plugin"),
    ],
)
def test_new_plugin_refuses_bad_names(tmp_path, name, expected):
    result = CliRunner().invoke(cli, ["new-plugin", name, "--output-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert expected in result.output
    assert not any(tmp_path.iterdir())


def test_new_plugin_refuses_an_existing_folder(tmp_path):
    (tmp_path / "shopmtl-gift-wrap").mkdir()
    result = CliRunner().invoke(cli, ["new-plugin", "gift_wrap", "--output-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "shopmtl-gift-wrap already exists" in result.output
