"""Loading plugins one at a time (shopmtl.registry.manager): built-ins, broken plugins skipped by name, hook checks."""

from __future__ import annotations

import json
import types

import pluggy
import pytest
import shopmtl
from kit_plugins import plugin
from registry_fakes import quiet_load, task, third_party_reports
from shopmtl import HOOK_API_VERSION, hookimpl
from shopmtl.registry.manager import (
    ENV_PLUGINS,
    PluginError,
    PluginReport,
    load_plugins,
)

# No plugin selection or strictness leaks in from the environment.
pytestmark = pytest.mark.usefixtures("clean_plugin_env")


# ------------------------------------------------------------------ loading built-ins


def test_builtins_register_their_tasks_and_are_reported():
    plugins, messages = quiet_load(
        [("first", plugin("first", task("a"), task("b"))), ("second", plugin("second", task("c")))]
    )
    assert messages == []
    assert list(plugins.tasks) == ["a", "b", "c"]
    assert plugins.task_plugin == {"a": "first", "b": "first", "c": "second"}
    report = third_party_reports(plugins)[0]
    assert report == PluginReport(
        name="first",
        version=shopmtl.__version__,
        source="builtin",
        distribution=None,
        hooks=["register_tasks"],
        tasks=["a", "b"],
        error=None,
    )
    assert plugins.versions() == {
        "shopmtl": shopmtl.__version__,
        "first": shopmtl.__version__,
        "second": shopmtl.__version__,
    }
    assert json.loads(json.dumps(report.to_dict()))["tasks"] == ["a", "b"]


def test_plugin_may_be_an_object_with_hookimpl_methods():
    class Tasks:
        @hookimpl
        def register_tasks(self, register):
            register(task("from_object"))

    plugins, _ = quiet_load([("obj", Tasks())])
    assert plugins.task_plugin == {"from_object": "obj"}


def test_invalid_task_skips_the_plugin_naming_it_and_the_problem():
    bad = task("bad", kind="regresion")
    plugins, messages = quiet_load(
        [("good", plugin("good", task("fine"))), ("broken", plugin("broken", task("ok"), bad))]
    )
    assert list(plugins.tasks) == ["fine"]  # all-or-nothing: broken's valid "ok" is not kept
    (message,) = messages
    assert (
        "built-in plugin 'broken'" in message
        and "task 'bad'" in message
        and "did you mean 'regression'?" in message
    )
    assert "block it (shopmtl --block broken" in message  # how to run without it
    assert ENV_PLUGINS not in message  # the selection variable does not apply to built-ins
    report = third_party_reports(plugins)[1]
    assert report.error and report.tasks == []
    assert plugins.versions() == {"shopmtl": shopmtl.__version__, "good": shopmtl.__version__}
    # its other hooks are gone too
    assert [i.plugin_name for i in plugins.pm.hook.register_tasks.get_hookimpls()] == ["good"]


def test_invalid_task_is_fatal_when_strict():
    with pytest.raises(
        PluginError, match=r"(?s)built-in plugin 'broken'.*task 'bad'.*primary_metric"
    ):
        load_plugins(
            [("broken", plugin("broken", task("bad", primary_metric="nope")))], strict=True
        )


def test_every_invalid_task_of_a_plugin_is_reported_at_once():
    _, (message,) = quiet_load([("p", plugin("p", task("Bad-1"), task("bad_2", labels=())))])
    assert "'Bad-1'" in message and "task 'bad_2'" in message and "labels is empty" in message


def test_register_tasks_raising_skips_only_that_plugin():
    @hookimpl
    def register_tasks(register):
        raise RuntimeError("no data file")

    crashing = types.ModuleType("crashing")
    crashing.register_tasks = register_tasks
    plugins, (message,) = quiet_load([("crashing", crashing), ("fine", plugin("fine", task("t")))])
    assert list(plugins.tasks) == ["t"]
    assert "'crashing'" in message and "register_tasks: RuntimeError: no data file" in message
    with pytest.raises(PluginError, match="crashing"):
        load_plugins([("crashing", crashing)], strict=True)


def test_duplicate_task_name_across_plugins_names_both():
    plugins, (message,) = quiet_load(
        [("first", plugin("first", task("same"))), ("second", plugin("second", task("same")))]
    )
    assert plugins.task_plugin == {"same": "first"}
    assert "built-in plugin 'second'" in message and "already taken by plugin 'first'" in message


def test_duplicate_task_name_within_a_plugin():
    plugins, (message,) = quiet_load([("twice", plugin("twice", task("same"), task("same")))])
    assert plugins.tasks == {}
    assert "registered twice by this plugin" in message


def test_plugin_names_must_be_unique():
    plugins, (message,) = quiet_load(
        [("p", plugin("p1", task("a"))), ("p", plugin("p2", task("b")))]
    )
    assert list(plugins.tasks) == ["a"] and "could not be registered" in message


def test_hook_api_major_mismatch_is_refused_naming_both_versions():
    future = plugin("future", task("t"))
    future.SHOPMTL_HOOK_API = "2.0"
    plugins, (message,) = quiet_load([("future", future)])
    assert plugins.tasks == {}
    assert "hook API 2.0" in message and f"hook API {HOOK_API_VERSION}" in message


def test_hook_api_same_major_is_accepted():
    newer_minor = plugin("newer", task("t"))
    newer_minor.SHOPMTL_HOOK_API = "1.7"
    assert list(quiet_load([("newer", newer_minor)])[0].tasks) == ["t"]


def test_misspelled_hook_is_reported_with_the_right_name():
    typo = types.ModuleType("typo")
    typo.register_task = hookimpl(lambda register: None)
    _, (message,) = quiet_load([("typo", typo)])
    assert (
        "unknown hook(s) 'register_task'" in message and "did you mean 'register_tasks'?" in message
    )


def test_optional_hook_of_a_newer_shopmtl_is_ignored():
    newer = plugin("newer", task("t"))
    newer.on_prediction = pluggy.HookimplMarker("shopmtl")(optionalhook=True)(lambda frame: None)
    plugins, messages = quiet_load([("newer", newer)])
    assert messages == [] and list(plugins.tasks) == ["t"]


def test_hook_argument_not_in_the_spec_is_refused():
    odd = plugin("odd", on_run_start=lambda run, extra: None)
    _, (message,) = quiet_load([("odd", odd)])
    assert "'odd'" in message and "extra" in message


def test_module_without_hooks_is_reported():
    _, (message,) = quiet_load([("empty", types.ModuleType("empty"))])
    assert "implements no shopmtl hook" in message and "@shopmtl.hookimpl" in message


def test_register_after_the_hook_returned_is_refused():
    kept = []

    @hookimpl
    def register_tasks(register):
        kept.append(register)

    late = types.ModuleType("late")
    late.register_tasks = register_tasks
    quiet_load([("late", late)])
    with pytest.raises(PluginError, match="after register_tasks returned"):
        kept[0](task())
