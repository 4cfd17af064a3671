"""Entry-point plugins, and selecting and blocking plugins (SHOPMTL_PLUGINS, only=, blocked=)."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
import shopmtl
from registry_fakes import (
    FakeDist,
    FakeEntryPoint,
    plugin,
    quiet_load,
    task,
    third_party_reports,
)
from shopmtl.registry.manager import (
    ENV_PLUGINS,
    ENV_STRICT,
    PluginError,
    load_plugins,
)

# No plugin selection or strictness leaks in from the environment.
pytestmark = pytest.mark.usefixtures("clean_plugin_env")


# --------------------------------------------------------------- entry-point plugins


def test_entry_points_load_after_builtins_with_their_distribution_version():
    ep = FakeEntryPoint("acme", plugin("acme", task("returns")), FakeDist("acme-tasks", "2.3.1"))
    plugins, messages = quiet_load([("core", plugin("core", task("sales")))], entry_points=[ep])
    assert messages == []
    assert plugins.task_plugin == {"sales": "core", "returns": "acme"}
    report = third_party_reports(plugins)[1]
    assert (report.source, report.distribution, report.version) == (
        "entry point",
        "acme-tasks",
        "2.3.1",
    )
    assert plugins.versions() == {
        "shopmtl": shopmtl.__version__,
        "core": shopmtl.__version__,
        "acme": "2.3.1",
    }


def test_broken_import_is_skipped_by_name_and_the_rest_loads():
    broken = FakeEntryPoint(
        "broken", ImportError("No module named 'tensorflow'"), FakeDist("broken-dist", "0.1")
    )
    good = FakeEntryPoint("good", plugin("good", task("g")))
    plugins, (message,) = quiet_load([], entry_points=[broken, good])
    assert list(plugins.tasks) == ["g"]
    assert (
        "plugin 'broken' (entry point broken_pkg.plugin of broken-dist)" in message
        and "tensorflow" in message
    )
    assert (
        f"leave 'broken' out of {ENV_PLUGINS}" in message and "pip uninstall broken-dist" in message
    )
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
    assert (
        "plugin 'raising' (entry point raising_plugin_mod)" in message
        and "needs a GPU driver" in message
    )


def test_same_entry_point_seen_twice_loads_once():
    target = plugin("twice", task("t"))
    plugins, messages = quiet_load(
        [], entry_points=[FakeEntryPoint("twice", target), FakeEntryPoint("twice", target)]
    )
    assert messages == [] and [r.name for r in third_party_reports(plugins)] == ["twice"]


# ------------------------------------------------------------------ selection, blocking


def _three_entry_points():
    return [FakeEntryPoint(n, plugin(n, task(f"{n}_task"))) for n in ("alpha", "beta", "gamma")]


def test_env_unset_loads_every_entry_point():
    plugins, _ = quiet_load(
        [("core", plugin("core", task("c")))], entry_points=_three_entry_points()
    )
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
    plugins, messages = quiet_load(
        [("core", plugin("core", task("c")))], entry_points=_three_entry_points()
    )
    assert list(plugins.tasks) == ["c", "alpha_task"] and messages == []


def test_names_may_come_as_one_comma_separated_string():
    plugins, _ = quiet_load(
        [], only="alpha, gamma", blocked="gamma", entry_points=_three_entry_points()
    )
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
