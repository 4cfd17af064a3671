"""The registry's plugin manager and task validation (shopmtl.registry.manager / .validate).

Plugins here are tiny in-test modules (``types.ModuleType``) or classes with ``@hookimpl``
methods; entry points are fakes with ``name``/``value``/``dist``/``load()`` -- or real
``importlib.metadata.EntryPoint`` objects pointing at a module written to ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import types
import warnings
from importlib.metadata import EntryPoint

import pluggy
import pytest
import torch
from torch import nn

import shopmtl
from shopmtl import HOOK_API_VERSION, TaskSpec, hookimpl
from shopmtl.registry.manager import (
    ENV_PLUGINS,
    ENV_STRICT,
    PluginError,
    PluginReport,
    PluginWarning,
    load_plugins,
)
from shopmtl.registry.validation import validate_task


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(ENV_PLUGINS, raising=False)
    monkeypatch.delenv(ENV_STRICT, raising=False)


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


# -------------------------------------------------------------------------- validation


def test_a_sound_task_has_no_problems():
    assert validate_task(task()) == []


def test_sound_tasks_of_every_kind_with_every_feature_pass():
    specs = [
        task(kind="binary"),
        task(kind="multiclass", classes=("a", "b", "c")),
        task(kind="multilabel", labels=("x", "y", "z")),
        task(text_pair="other", numeric=("n1", "n2"), categorical=("c1",), keys=("id",)),
        task(kind="multiclass", classes=("a", "b"), text_pair="other", categorical=("c1", "c2")),
    ]
    for spec in specs:
        assert validate_task(spec) == [], spec.kind


def test_not_a_taskspec():
    assert "not a TaskSpec" in validate_task({"name": "toy"})[0]


@pytest.mark.parametrize("bad", ["Basket-Size", "", "2nd", "has space"])
def test_name_must_be_an_identifier(bad):
    message = problems_of(task(name=bad))
    assert repr(bad) in message and "lower-case letters" in message


def test_name_problem_suggests_a_fix():
    assert "name='basket_size'" in problems_of(task(name="Basket-Size"))


def test_unknown_kind_lists_kinds_and_suggests_the_closest():
    message = problems_of(task(kind="regresion"))
    assert "kind 'regresion' is not a task kind" in message
    assert "did you mean 'regression'?" in message


def test_labels_must_not_be_empty():
    assert "labels is empty" in problems_of(task(labels=()))


def test_labels_as_a_plain_string_is_explained():
    assert "write labels=('label',)" in problems_of(task(labels="label"))


def test_single_label_kinds_take_one_column():
    message = problems_of(task(kind="binary", labels=("a", "b")))
    assert "exactly one label column" in message and "multilabel" in message


def test_label_that_is_also_an_input_is_a_leak():
    assert "both a label and a model input" in problems_of(task(numeric=("label",)))


def test_multiclass_needs_two_classes():
    message = problems_of(task(kind="multiclass", classes=("only",)))
    assert "at least 2 classes" in message and "kind='binary'" in message


def test_primary_metric_must_be_declared():
    message = problems_of(task(primary_metric="rmse"))
    assert "primary_metric 'rmse' is not in metric_directions" in message


def test_unknown_direction():
    message = problems_of(task(metric_directions={"mae": "down"}))
    assert "metric 'mae' has direction 'down'" in message and "'max', 'min', 'info'" in message


def test_primary_metric_must_be_comparable():
    message = problems_of(task(metric_directions={"mae": "info"}))
    assert "primary_metric 'mae' has direction 'info'" in message and "'max' or 'min'" in message


@pytest.mark.parametrize("field", ["build_dataset", "metrics", "loss", "build_head", "decode", "baselines"])
def test_callables_must_be_callable(field):
    assert f"{field} is 3, not a callable" in problems_of(task(**{field: 3}))


def test_settings_must_be_a_dataclass_with_defaults():
    @dataclasses.dataclass
    class NoDefault:
        window: int

    assert "not a dataclass type" in problems_of(task(settings=dict))
    assert "without a default (window)" in problems_of(task(settings=NoDefault))


class _Wide(nn.Module):
    def __init__(self, spec, width):
        super().__init__()
        self.linear = nn.Linear(spec.hidden_size, width)

    def forward(self, x):
        return self.linear(x.text)


def test_head_width_must_fit_the_kind():
    message = problems_of(task(kind="binary", build_head=lambda spec: _Wide(spec, 3)))
    assert "head returned shape (4, 3) but kind 'binary' needs (4, 1)" in message
    assert "n_outputs=spec.n_outputs" in message


def test_head_width_for_multiclass_names_the_classes():
    message = problems_of(task(kind="multiclass", classes=("a", "b", "c"), build_head=lambda spec: _Wide(spec, 1)))
    assert "needs (4, 3)" in message and "one per class: 3" in message


def test_head_that_raises_on_the_dummy_batch():
    class NoPair(nn.Module):
        def __init__(self, spec):
            super().__init__()
            self.linear = nn.Linear(spec.hidden_size, 1)

        def forward(self, x):
            return self.linear(x.pair)  # breaks: the task declares no text_pair

    message = problems_of(task(build_head=NoPair))
    assert "build_head raised" in message and "dummy batch" in message


def test_build_head_must_return_a_module():
    assert "not a torch.nn.Module" in problems_of(task(build_head=lambda spec: (lambda x: x.text)))


def test_loss_must_skip_missing_labels():
    message = problems_of(task(loss=lambda outputs, labels: ((outputs - labels) ** 2).mean()))
    assert "nan" in message and "missing (NaN) label" in message and "masked_mse" in message


def test_loss_must_be_a_scalar():
    assert "not a scalar tensor" in problems_of(task(loss=lambda outputs, labels: outputs.abs()))


def test_loss_must_reach_the_head():
    message = problems_of(task(loss=lambda outputs, labels: torch.tensor(1.0)))
    assert "not connected to the head's outputs" in message


def test_decode_must_return_a_row_per_prediction():
    assert "decode returned" in problems_of(task(decode=lambda predictions: "oops"))


def test_validation_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    assert validate_task(task(numeric=("x",))) == []
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------ loading built-ins


def test_builtins_register_their_tasks_and_are_reported():
    plugins, messages = quiet_load([("first", plugin("first", task("a"), task("b"))), ("second", plugin("second", task("c")))])
    assert messages == []
    assert list(plugins.tasks) == ["a", "b", "c"]
    assert plugins.task_plugin == {"a": "first", "b": "first", "c": "second"}
    report = third_party_reports(plugins)[0]
    assert report == PluginReport(
        name="first", version=shopmtl.__version__, source="builtin", distribution=None,
        hooks=["register_tasks"], tasks=["a", "b"], error=None,
    )
    assert plugins.versions() == {"shopmtl": shopmtl.__version__, "first": shopmtl.__version__, "second": shopmtl.__version__}
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
    plugins, messages = quiet_load([("good", plugin("good", task("fine"))), ("broken", plugin("broken", task("ok"), bad))])
    assert list(plugins.tasks) == ["fine"]  # all-or-nothing: broken's valid "ok" is not kept
    (message,) = messages
    assert "built-in plugin 'broken'" in message and "task 'bad'" in message and "did you mean 'regression'?" in message
    assert "block it (shopmtl --block broken" in message  # how to run without it
    assert ENV_PLUGINS not in message  # the selection variable does not apply to built-ins
    report = third_party_reports(plugins)[1]
    assert report.error and report.tasks == []
    assert plugins.versions() == {"shopmtl": shopmtl.__version__, "good": shopmtl.__version__}
    # its other hooks are gone too
    assert [i.plugin_name for i in plugins.pm.hook.register_tasks.get_hookimpls()] == ["good"]


def test_invalid_task_is_fatal_when_strict():
    with pytest.raises(PluginError, match=r"(?s)built-in plugin 'broken'.*task 'bad'.*primary_metric"):
        load_plugins([("broken", plugin("broken", task("bad", primary_metric="nope")))], strict=True)


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
    plugins, (message,) = quiet_load([("first", plugin("first", task("same"))), ("second", plugin("second", task("same")))])
    assert plugins.task_plugin == {"same": "first"}
    assert "built-in plugin 'second'" in message and "already taken by plugin 'first'" in message


def test_duplicate_task_name_within_a_plugin():
    plugins, (message,) = quiet_load([("twice", plugin("twice", task("same"), task("same")))])
    assert plugins.tasks == {}
    assert "registered twice by this plugin" in message


def test_plugin_names_must_be_unique():
    plugins, (message,) = quiet_load([("p", plugin("p1", task("a"))), ("p", plugin("p2", task("b")))])
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
    assert "unknown hook(s) 'register_task'" in message and "did you mean 'register_tasks'?" in message


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


# --------------------------------------------------------------- entry-point plugins


def test_entry_points_load_after_builtins_with_their_distribution_version():
    ep = FakeEntryPoint("acme", plugin("acme", task("returns")), FakeDist("acme-tasks", "2.3.1"))
    plugins, messages = quiet_load([("core", plugin("core", task("sales")))], entry_points=[ep])
    assert messages == []
    assert plugins.task_plugin == {"sales": "core", "returns": "acme"}
    report = third_party_reports(plugins)[1]
    assert (report.source, report.distribution, report.version) == ("entry point", "acme-tasks", "2.3.1")
    assert plugins.versions() == {"shopmtl": shopmtl.__version__, "core": shopmtl.__version__, "acme": "2.3.1"}


def test_broken_import_is_skipped_by_name_and_the_rest_loads():
    broken = FakeEntryPoint("broken", ImportError("No module named 'tensorflow'"), FakeDist("broken-dist", "0.1"))
    good = FakeEntryPoint("good", plugin("good", task("g")))
    plugins, (message,) = quiet_load([], entry_points=[broken, good])
    assert list(plugins.tasks) == ["g"]
    assert "plugin 'broken' (entry point broken_pkg.plugin of broken-dist)" in message and "tensorflow" in message
    assert f"leave 'broken' out of {ENV_PLUGINS}" in message and "pip uninstall broken-dist" in message
    (report,) = [r for r in plugins.reports if r.name == "broken"]
    assert report.error.startswith("could not be imported: ImportError")
    assert report.version == "0.1" and report.hooks == []
    assert "broken" not in plugins.versions()


def test_broken_import_is_fatal_when_strict():
    broken = FakeEntryPoint("broken", ImportError("boom"))
    with pytest.raises(PluginError, match="plugin 'broken' .*could not be imported") as info:
        load_plugins([], strict=True, entry_points=[broken, FakeEntryPoint("good", plugin("good"))])
    assert isinstance(info.value.__cause__, ImportError)


def test_strict_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_STRICT, "1")
    with pytest.raises(PluginError, match="broken"):
        load_plugins([], entry_points=[FakeEntryPoint("broken", ImportError("boom"))])
    monkeypatch.setenv(ENV_STRICT, "0")
    assert quiet_load([], entry_points=[FakeEntryPoint("broken", ImportError("boom"))])[1]
    monkeypatch.setenv(ENV_STRICT, "0")
    with pytest.raises(PluginError):  # the argument wins over a lenient environment
        load_plugins([], strict=True, entry_points=[FakeEntryPoint("broken", ImportError("boom"))])
    monkeypatch.setenv(ENV_STRICT, "perhaps")
    with pytest.raises(PluginError, match=f"{ENV_STRICT}='perhaps' is not understood"):
        load_plugins([])


def test_real_entry_point_objects(tmp_path, monkeypatch):
    (tmp_path / "real_plugin_mod.py").write_text(
        "from shopmtl import hookimpl, TaskSpec\n"
        "SPEC = TaskSpec(name='real', kind='binary', description='', text='t', labels=('y',),\n"
        "    build_dataset=lambda ctx: None, metrics=lambda b: {'auc': 1.0},\n"
        "    metric_directions={'auc': 'max'}, primary_metric='auc')\n"
        "@hookimpl\n"
        "def register_tasks(register):\n"
        "    register(SPEC)\n"
    )
    (tmp_path / "raising_plugin_mod.py").write_text("raise ImportError('needs a GPU driver')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [
        EntryPoint(name="raising", value="raising_plugin_mod", group="shopmtl"),
        EntryPoint(name="real", value="real_plugin_mod", group="shopmtl"),
    ]
    plugins, (message,) = quiet_load([], entry_points=eps)
    assert plugins.task_plugin == {"real": "real"}
    assert "plugin 'raising' (entry point raising_plugin_mod)" in message and "needs a GPU driver" in message


def test_same_entry_point_seen_twice_loads_once():
    target = plugin("twice", task("t"))
    plugins, messages = quiet_load([], entry_points=[FakeEntryPoint("twice", target), FakeEntryPoint("twice", target)])
    assert messages == [] and [r.name for r in third_party_reports(plugins)] == ["twice"]


# ------------------------------------------------------------------ selection, blocking


def _three_entry_points():
    return [FakeEntryPoint(n, plugin(n, task(f"{n}_task"))) for n in ("alpha", "beta", "gamma")]


def test_env_unset_loads_every_entry_point():
    plugins, _ = quiet_load([("core", plugin("core", task("c")))], entry_points=_three_entry_points())
    assert list(plugins.tasks) == ["c", "alpha_task", "beta_task", "gamma_task"]


def test_env_empty_loads_only_builtins(monkeypatch):
    monkeypatch.setenv(ENV_PLUGINS, "")
    eps = _three_entry_points()
    plugins, messages = quiet_load([("core", plugin("core", task("c")))], entry_points=eps)
    assert list(plugins.tasks) == ["c"] and messages == []
    assert not any(ep.loaded for ep in eps)  # not even imported
    assert plugins.skipped["alpha"] == f"not selected by {ENV_PLUGINS}"


def test_env_list_selects_entry_points(monkeypatch):
    monkeypatch.setenv(ENV_PLUGINS, " gamma, alpha ,")
    eps = _three_entry_points()
    plugins, _ = quiet_load([("core", plugin("core", task("c")))], entry_points=eps)
    assert list(plugins.tasks) == ["c", "alpha_task", "gamma_task"]
    assert [ep.loaded for ep in eps] == [True, False, True]


def test_only_argument_overrides_the_env(monkeypatch):
    monkeypatch.setenv(ENV_PLUGINS, "alpha")
    plugins, _ = quiet_load([], only=["beta"], entry_points=_three_entry_points())
    assert list(plugins.tasks) == ["beta_task"]
    plugins, _ = quiet_load([], only=(), entry_points=_three_entry_points())
    assert plugins.tasks == {}


def test_selecting_an_unknown_plugin_is_reported(monkeypatch):
    monkeypatch.setenv(ENV_PLUGINS, "alpha,alpah")
    plugins, (message,) = quiet_load([], entry_points=_three_entry_points())
    assert list(plugins.tasks) == ["alpha_task"]
    assert "'alpah'" in message and "alpha, beta, gamma" in message
    with pytest.raises(PluginError, match="alpah"):
        load_plugins([], strict=True, entry_points=_three_entry_points())


def test_builtin_names_in_the_selection_are_not_reported(monkeypatch):
    monkeypatch.setenv(ENV_PLUGINS, "core,alpha")
    plugins, messages = quiet_load([("core", plugin("core", task("c")))], entry_points=_three_entry_points())
    assert list(plugins.tasks) == ["c", "alpha_task"] and messages == []


def test_names_may_come_as_one_comma_separated_string():
    plugins, _ = quiet_load([], only="alpha, gamma", blocked="gamma", entry_points=_three_entry_points())
    assert list(plugins.tasks) == ["alpha_task"]


def test_blocked_builtins_and_entry_points_are_not_loaded():
    eps = _three_entry_points()
    builtins = [("core", plugin("core", task("c"))), ("extra", plugin("extra", task("x")))]
    plugins, messages = quiet_load(builtins, blocked=["extra", "beta"], entry_points=eps)
    assert list(plugins.tasks) == ["c", "alpha_task", "gamma_task"] and messages == []
    assert not eps[1].loaded
    assert plugins.skipped == {"extra": "blocked", "beta": "blocked"}
    assert [r.name for r in third_party_reports(plugins)] == ["core", "alpha", "gamma"]
    assert plugins.pm.is_blocked("beta")


def test_blocking_wins_over_selection(monkeypatch):
    monkeypatch.setenv(ENV_PLUGINS, "alpha,beta")
    plugins, _ = quiet_load([], blocked=["beta"], entry_points=_three_entry_points())
    assert list(plugins.tasks) == ["alpha_task"]


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
    with pytest.warns(PluginWarning, match=r"plugin 'exploding' failed in on_run_start: RuntimeError: disk full"):
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
        ("metrics_only", plugin("metrics_only", on_evaluation=lambda metrics: seen.update(few=metrics))),
        ("all", plugin("all", on_evaluation=lambda run, step, split, metrics: seen.update(all=(step, split)))),
        ("none", plugin("none", on_evaluation=lambda: seen.update(none=True))),
    ]
    plugins, messages = quiet_load(builtins)
    assert messages == []
    plugins.notify("on_evaluation", run=_run_info(), step=7, split="val", metrics={"toy": {"mae": 0.5}})
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


# ------------------------------------------------------------------------ architecture


def test_registry_imports_nothing_of_core_or_plugins_and_stays_light():
    code = (
        "import sys\n"
        "from shopmtl.registry.manager import load_plugins\n"
        "load_plugins([], entry_points=[])\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('shopmtl.core', 'shopmtl.plugins')) or m == 'torch')\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_deprecated_hook_warns_naming_the_plugin():
    import pluggy

    class FutureSpecs:
        @pluggy.HookspecMarker("shopmtl")(warn_on_impl=DeprecationWarning("use register_tasks instead; removed in 2.0"))
        def register_task(self, task):
            """An old hook kept for compatibility."""

    class OldPlugin:
        @hookimpl
        def register_task(self, task):
            pass

        @hookimpl
        def register_tasks(self, register):
            pass

    from shopmtl.registry import manager

    original = manager.pluggy.PluginManager.add_hookspecs

    def add_with_future(self, module_or_class):
        original(self, module_or_class)
        if module_or_class is not FutureSpecs:
            original(self, FutureSpecs)

    import unittest.mock

    with unittest.mock.patch.object(manager.pluggy.PluginManager, "add_hookspecs", add_with_future):
        with pytest.warns(DeprecationWarning) as caught:
            plugins = load_plugins([("oldie", OldPlugin())], only=[])
    messages = [str(w.message) for w in caught]
    assert any("'oldie'" in m and "register_task" in m and "removed in 2.0" in m for m in messages)
    assert "oldie" in plugins.versions()  # deprecated, not broken: it still loads
