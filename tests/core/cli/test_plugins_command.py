"""``shopmtl plugins [check]`` and ``shopmtl new-plugin``: the plugin author's commands."""

from __future__ import annotations

import json
import warnings

import pytest
import shopmtl
import toy_tasks
from click.testing import CliRunner
from kit_plugins import (
    BROKEN_HEAD,
    plugin,
    spec,
    toy_cli,  # noqa: F401 -- a fixture: `shopmtl` on the toy plugins
)
from shopmtl import BuildContext, TaskData
from shopmtl.core.cli import cli
from shopmtl.core.cli.common import PluginSource
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.testing import (
    registered_plugin,
    run_cli,
    shopmtl_plugins,  # noqa: F401 -- the fixture (a plugin's conftest.py uses pytest_plugins instead)
)

# No plugin selection or strictness leaks in from the environment.
pytestmark = pytest.mark.usefixtures("clean_plugin_env")


# ------------------------------------------------------------- shopmtl plugins


def test_plugins_still_lists_every_plugin(toy_cli):
    result = toy_cli("plugins")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["plugin", "version", "source", "hooks", "tasks", "status"]
    good = next(line for line in lines if line.startswith("good "))
    assert "toy_value, toy_flag" in good and good.rstrip().endswith("loaded")
    broken = next(line for line in lines if line.startswith("broken_head "))
    assert "skipped: " in broken and "registered invalid task(s)" in broken

    as_json = json.loads(toy_cli("plugins", "--json").output)
    by_name = {r["name"]: r for r in as_json}
    assert (
        by_name["good"]["tasks"] == ["toy_value", "toy_flag"] and by_name["good"]["error"] is None
    )
    assert by_name["broken_head"]["error"] and by_name["bad_data"]["error"] is None
    assert {name: r["status"] for name, r in by_name.items()} == {
        "shopmtl": "loaded",
        "good": "loaded",
        "broken_head": "skipped",
        "bad_data": "loaded",
    }


def test_plugins_says_loaded_is_not_checked(toy_cli):
    """bad_data's dataset is broken, yet it loads: the listing must not call that "ok"."""
    listing = toy_cli("plugins").output
    bad = next(line for line in listing.splitlines() if line.startswith("bad_data "))
    assert bad.rstrip().endswith("loaded") and " ok" not in bad
    assert "Not checked here: datasets, labels and metrics" in listing
    assert "`shopmtl plugins check NAME`" in listing
    assert toy_cli("plugins", "check", "bad_data").exit_code == 1  # the deeper check finds it
    checked = toy_cli("plugins", "check", "good").output
    assert (
        "checked 2 task(s) of plugin good: registration, dataset, labels, metrics, baselines, priors -- ok"
        in checked
    )


def _crashing_build(ctx: BuildContext) -> TaskData:
    raise KeyError("description")


def test_a_loaded_plugin_whose_builder_fails_is_named_when_a_command_builds_its_data(tmp_path):
    crashing = plugin("crashing", spec("crashing_task", build_dataset=_crashing_build))
    with registered_plugin(crashing, name="crashing"):
        listed = run_cli("plugins")
        built = run_cli("data", "crashing_task", "--output", str(tmp_path / "rows.csv"))
    assert (
        next(line for line in listed.output.splitlines() if line.startswith("crashing "))
        .rstrip()
        .endswith("loaded")
    )
    assert built.exit_code == 1
    assert (
        f"task 'crashing_task' (plugin crashing {shopmtl.__version__}): build_dataset raised "
        "KeyError: 'description' at " in built.output
    )
    assert (
        "`shopmtl plugins check crashing`" in built.output
        and "test_plugins_command.py:" in built.output
    )


@pytest.mark.parametrize(
    "args",
    [
        ("--strict-plugins", "tasks"),
        ("tasks", "--strict-plugins"),
        ("plugins", "--strict-plugins"),
        ("--strict-plugins", "plugins", "check", "fine"),
        ("plugins", "check", "fine", "--strict-plugins"),
    ],
)
def test_strict_plugins_works_before_and_after_the_command(args):
    with (
        pytest.warns(UserWarning),
        registered_plugin(("fine", toy_tasks), ("broken_head", BROKEN_HEAD), strict=False),
    ):
        lenient = run_cli(*[a for a in args if a != "--strict-plugins"])
        strict = run_cli(*args)
    assert lenient.exit_code == 0, lenient.output
    assert strict.exit_code == 1 and "broken_head" in strict.output, strict.output
    assert "No such option" not in strict.output


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
    with (
        pytest.warns(UserWarning),
        registered_plugin(BROKEN_HEAD, name="broken_head", strict=False),
    ):
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
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda **kw: [ep] if kw.get("group") == "shopmtl" else real(**kw),
    )

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
    fixed = toy_cli(
        "plugins", "check", "good", "--config", str(config), "tasks.toy_value.settings={rows: 30}"
    )
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
