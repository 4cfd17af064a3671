"""The plugin author's kit, shopmtl.testing: check_task, plugin sets and the fixture, train_briefly."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import toy_tasks
from click.testing import CliRunner
from kit_plugins import BAD_DATA_SPEC, BROKEN_HEAD, WrongWidth, spec
from shopmtl import TaskData
from shopmtl.core import cli as cli_module
from shopmtl.core.cli import cli, common
from shopmtl.registry.manager import ENV_PLUGINS, PluginError
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

# No plugin selection or strictness leaks in from the environment.
pytestmark = pytest.mark.usefixtures("clean_plugin_env")


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
            {
                "build_dataset": lambda ctx: TaskData(
                    {
                        s: toy_tasks.build(ctx)[s].assign(value=np.inf)
                        for s in ("train", "val", "test")
                    }
                )
            },
            "label column 'value' of the train split is infinite on 240 rows",
        ),
    ],
)
def test_check_task_reports_data_and_metric_problems(changes, expected):
    problems = check_task(spec("toy", **changes))
    assert any(expected in p for p in problems), problems


def test_check_task_fits_each_prior_and_round_trips_it_through_its_state():
    from shopmtl import Prior, PriorState

    def fit(train, val):
        slope, intercept = np.polyfit(train["row_id"], train["value"], 1)
        return np.array([slope, intercept])

    good = Prior(
        "least squares on the row id",
        fit=fit,
        predict=lambda line, frame: line[0] * frame["row_id"].to_numpy() + line[1],
        state=lambda line: PriorState({"line": line}),
        from_state=lambda state: state.arrays["line"],
    )
    assert check_task(spec("toy", priors={"line": good})) == []

    unsaveable = dataclasses.replace(good, state=None, from_state=None)
    (problem,) = check_task(spec("toy", priors={"line": unsaveable}))
    assert "prior 'line'" in problem and "declares no Prior.state and Prior.from_state" in problem

    lossy = dataclasses.replace(good, state=lambda line: PriorState({"line": line.round(0)}))
    (problem,) = check_task(spec("toy", priors={"line": lossy}))
    assert "the state loses part of the model" in problem, problem

    words = dataclasses.replace(good, state=lambda line: PriorState({"line": np.array(["a"])}))
    (problem,) = check_task(spec("toy", priors={"line": words}))
    assert "array 'line' is str" in problem and "PriorState.meta" in problem, problem

    (wide,) = check_task(
        spec(
            "toy",
            priors={
                "wide": dataclasses.replace(
                    good, predict=lambda f, frame: np.zeros((len(frame), 2))
                )
            },
        )
    )
    assert "prior 'wide' predicted shape" in wide and "tasks.toy.prior: wide" in wide


def test_check_task_multiclass_labels_must_be_class_indexes():
    def build(ctx):
        frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["small", 1, 5]})
        return TaskData({"train": frame, "val": frame, "test": frame})

    task = spec(
        "sizes", kind="multiclass", classes=("s", "m", "l"), labels=("label",), build_dataset=build
    )
    (problem, *_) = check_task(task)
    assert (
        "label column 'label' of the train split is not a number on 1 row (e.g. 'small')" in problem
    )
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
    # text (train, test), a label of 2, val lacking the label column, test of one class
    assert message.startswith("task 'bad_rows' has 5 problems:")
    assert message.count("\n  - ") == 5


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
    result = CliRunner().invoke(
        cli, ["plugins", "--json"], obj=plugin_source(toy_tasks, name="toy")
    )
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
    assert (tmp_path / "train_briefly.yaml").is_file() and (
        tmp_path / "run" / "metrics.json"
    ).is_file()


def test_train_briefly_names_unknown_tasks(tmp_path):
    with pytest.raises(ValueError, match="'sales' are not registered by these plugins"):
        train_briefly(toy_tasks, tasks=["sales"], tmp_path=tmp_path)
