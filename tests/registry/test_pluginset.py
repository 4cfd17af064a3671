"""Observer hooks through PluginSet.notify: one raising plugin never stops the others."""

from __future__ import annotations

import pytest
from kit_plugins import plugin
from registry_fakes import quiet_load, task
from shopmtl.registry.manager import (
    PluginError,
    PluginWarning,
    load_plugins,
)

# No plugin selection or strictness leaks in from the environment.
pytestmark = pytest.mark.usefixtures("clean_plugin_env")

# ----------------------------------------------------------------------------- notify


def _run_info():
    from shopmtl.registry.hookspecs import RunInfo

    return RunInfo(output_dir=None, config={}, tasks=("toy",), is_main_process=True)


def test_notify_isolates_a_raising_hook():
    calls = []

    def explode(run):
        raise RuntimeError("disk full")

    builtins = [
        ("first", plugin("first", on_run_start=lambda run: calls.append("first"))),
        ("exploding", plugin("exploding", on_run_start=explode)),
        ("last", plugin("last", on_run_start=lambda run: calls.append("last"))),
    ]
    plugins, _ = quiet_load(builtins)
    with pytest.warns(
        PluginWarning, match=r"plugin 'exploding' failed in on_run_start: RuntimeError: disk full"
    ):
        plugins.notify("on_run_start", run=_run_info())
    assert sorted(calls) == ["first", "last"]  # the others still ran


def test_notify_raises_when_strict():
    def explode(run):
        raise RuntimeError("disk full")

    plugins = load_plugins([("exploding", plugin("exploding", on_run_start=explode))], strict=True)
    with pytest.raises(PluginError, match="exploding") as info:
        plugins.notify("on_run_start", run=_run_info())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_hook_impl_with_fewer_arguments_is_still_called():
    seen = {}
    builtins = [
        (
            "metrics_only",
            plugin("metrics_only", on_evaluation=lambda metrics: seen.update(few=metrics)),
        ),
        (
            "all",
            plugin(
                "all",
                on_evaluation=lambda run, step, split, metrics: seen.update(all=(step, split)),
            ),
        ),
        ("none", plugin("none", on_evaluation=lambda: seen.update(none=True))),
    ]
    plugins, messages = quiet_load(builtins)
    assert messages == []
    plugins.notify(
        "on_evaluation", run=_run_info(), step=7, split="val", metrics={"toy": {"mae": 0.5}}
    )
    assert seen == {"few": {"toy": {"mae": 0.5}}, "all": (7, "val"), "none": True}


def test_notify_checks_the_callers_arguments():
    plugins = load_plugins([])
    with pytest.raises(ValueError, match="needs exactly the arguments"):
        plugins.notify("on_checkpoint_saved", run=_run_info(), path="x")
    with pytest.raises(ValueError, match="observer hooks only"):
        plugins.notify("register_tasks", register=print)


def test_notify_skips_plugins_that_were_skipped():
    calls = []
    builtins = [("bad", plugin("bad", task("Bad"), on_run_start=lambda: calls.append("bad")))]
    plugins, _ = quiet_load(builtins)
    plugins.notify("on_run_start", run=_run_info())
    assert calls == []
