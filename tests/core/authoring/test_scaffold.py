"""``shopmtl new-plugin``: the generated package installs, is discovered, and passes its own tests.

The integration test does what a plugin author does on day one, in a fresh virtual
environment: scaffold, ``pip install`` (no index, no build isolation), run the generated
tests with that environment's pytest, and check that ``load_plugins(())`` finds the
plugin through its entry point and ``shopmtl plugins check NAME`` passes.

The venv technique is test_entry_point_discovery.py's: ``--system-site-packages`` plus a
bridge ``.pth`` that runs ``site.addsitedir`` on this interpreter's site directories, so
torch, pytest, setuptools and the editable shopmtl are importable there.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import re
import shlex
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import SMOKE_CONFIG
from shopmtl import BuildContext
from shopmtl.core.authoring.scaffold import KINDS, create_plugin, folder_name, plugin_files
from shopmtl.core.config import load_config
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.registry.manager import ENV_PLUGINS, ENV_STRICT
from shopmtl.testing import assert_valid_task, run_cli, train_briefly
from venvs import clean_env, fresh_venv, run

NAME = "gift_price"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(ENV_PLUGINS, raising=False)
    monkeypatch.delenv(ENV_STRICT, raising=False)


def test_generated_package_layout(tmp_path):
    target = create_plugin(NAME, tmp_path, author="Ada")
    assert target == tmp_path / "shopmtl-gift-price" == tmp_path / folder_name(NAME)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == sorted(
        plugin_files(NAME)
    )

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "shopmtl-gift-price"
    assert project["project"]["entry-points"]["shopmtl"] == {NAME: "shopmtl_gift_price.plugin"}
    assert "shopmtl-plugin" in project["project"]["keywords"]
    assert any(d.startswith("shopmtl>=") for d in project["project"]["dependencies"])
    assert project["tool"]["setuptools"]["package-data"] == {"shopmtl_gift_price": ["data/*.csv"]}
    assert project["project"]["authors"] == [{"name": "Ada"}]

    rows = list(
        csv.DictReader(
            io.StringIO((target / "shopmtl_gift_price" / "data" / f"{NAME}.csv").read_text())
        )
    )
    assert len(rows) == 300 and set(rows[0]) == {
        "item_id",
        "title",
        "category",
        "pack_size",
        "price",
    }
    assert (
        (target / "tests" / "conftest.py")
        .read_text()
        .strip()
        .endswith('pytest_plugins = ["shopmtl.testing"]')
    )


def test_generated_plugin_is_a_valid_task_without_installing(tmp_path, monkeypatch):
    target = create_plugin(NAME, tmp_path)
    monkeypatch.syspath_prepend(str(target))
    from shopmtl_gift_price import plugin

    assert plugin.SHOPMTL_HOOK_API.split(".")[0] == "1"
    assert_valid_task(plugin.GIFT_PRICE)
    plugins = load_plugins([(NAME, plugin)], strict=True, only=[])
    assert plugins.task_plugin == {NAME: NAME}
    data = plugin.build_dataset(_context(plugin.GiftPriceSettings()))
    assert [len(data[s]) for s in ("train", "val", "test")] == [240, 30, 30]


def _context(settings):
    return BuildContext(settings=settings)


# ------------------------------------------------------------------- --kind

#: What each kind's labels must look like on the generated sample (train split).
LABEL_CHECKS = {
    "regression": lambda y: np.isfinite(y).all() and y.std() > 0.3,
    "binary": lambda y: set(np.unique(y)) == {0.0, 1.0} and 0.2 < y.mean() < 0.5,
    "multiclass": lambda y: set(np.unique(y)) == {0.0, 1.0, 2.0},
    "multilabel": lambda y: (
        set(np.unique(y)) == {0.0, 1.0} and (y.mean(axis=0) > 0.05).all() and y.shape[1] == 3
    ),
}


def _import_generated(kind: str, root: Path, monkeypatch):
    """Scaffold ``my_KIND`` under ``root`` and import its plugin module (nothing installed)."""
    name = f"my_{kind}"
    target = create_plugin(name, root, kind=kind)
    monkeypatch.syspath_prepend(str(target))
    for module in [m for m in sys.modules if m.split(".")[0] == f"shopmtl_{name}"]:
        monkeypatch.delitem(sys.modules, module)
    return name, target, importlib.import_module(f"shopmtl_{name}.plugin")


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_is_a_valid_task_with_its_own_labels_baseline_and_metrics(
    kind, tmp_path, monkeypatch
):
    name, target, plugin = _import_generated(kind, tmp_path, monkeypatch)
    spec = getattr(plugin, name.upper())
    assert spec.kind == kind and spec.name == name
    assert_valid_task(spec)  # registration checks, the dataset, metrics and baselines once
    data = plugin.build_dataset(BuildContext())
    labels = data["train"][list(spec.labels)].to_numpy(dtype=float)
    assert LABEL_CHECKS[kind](labels), f"{kind}: implausible labels, means {labels.mean(axis=0)}"
    (baseline,) = spec.baselines(data, "test").values()
    assert set(baseline) == set(spec.metric_directions) and not np.isnan(
        baseline[spec.primary_metric]
    )
    # The data file ships in the wheel: pyproject's package-data names it.
    pyproject = (target / "pyproject.toml").read_text()
    assert f'shopmtl_{name} = ["data/*.csv"]' in pyproject
    assert (
        (target / f"shopmtl_{name}" / "data" / f"{name}.csv")
        .read_text()
        .splitlines()[0]
        .startswith("item_id,")
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kinds_generated_tests_pass_as_generated(kind, tmp_path, monkeypatch):
    """The generated tests/, run in-process; the brief training is left to the joint test below."""
    _, target, _ = _import_generated(kind, tmp_path, monkeypatch)
    code = pytest.main(
        [
            str(target / "tests"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            "--rootdir",
            str(target),
            "-k",
            "not trains_briefly",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
        ]
    )
    assert code == 0, f"the generated tests of a {kind} plugin failed (output above)"


def test_all_kinds_train_together_briefly(tmp_path, monkeypatch):
    plugins = [
        (name, plugin)
        for name, _, plugin in (
            _import_generated(kind, tmp_path / kind, monkeypatch) for kind in KINDS
        )
    ]
    result = train_briefly(*plugins, steps=4, tmp_path=tmp_path / "run")
    for name, plugin in plugins:
        assert set(result.metrics[name]["test"]) == set(plugin.METRIC_DIRECTIONS)


def test_unknown_kind_is_refused_with_the_choices(tmp_path):
    with pytest.raises(
        ValueError, match="unknown task kind 'ranking': use one of regression, binary"
    ):
        plugin_files(NAME, kind="ranking")
    result = run_cli("new-plugin", NAME, "--kind", "ranking", "--output-dir", str(tmp_path))
    assert result.exit_code == 2 and "'ranking' is not one of" in result.output
    made = run_cli("new-plugin", NAME, "--kind", "multilabel", "--output-dir", str(tmp_path))
    assert made.exit_code == 0, made.output
    assert (
        'kind="multilabel"'
        in (tmp_path / folder_name(NAME) / "shopmtl_gift_price" / "plugin.py").read_text()
    )
    assert "shopmtl train smoke.yaml" in made.output


# ------------------------------------------------------ the README's joint run


def readme_commands(target: Path) -> list[list[str]]:
    """The ``shopmtl train`` lines of the generated README's joint-run block, as argument lists."""
    readme = (target / "README.md").read_text()
    block = re.search(r"## Train it jointly.*?```bash\n(.*?)```", readme, re.DOTALL).group(1)
    return [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]


def test_readme_points_to_a_smoke_sized_run_first(tmp_path):
    target = create_plugin(NAME, tmp_path)
    commands = readme_commands(target)
    assert all(c[:2] == ["shopmtl", "train"] for c in commands)
    smoke = [c for c in commands if "smoke.yaml" in c]
    assert len(smoke) == len(commands) - 1 and commands[0] == smoke[0], (
        "smoke-sized runs first, the full run last"
    )
    for command in smoke:  # each parses to a valid config whose tasks include NAME
        overrides = [a for a in command[3:] if "=" in a]
        assert NAME in load_config(target / "smoke.yaml", overrides).tasks
    full = load_config(None, [a for a in commands[-1][2:] if "=" in a])
    assert (
        NAME in full.tasks and full.training.max_steps > 100
    )  # the full run: said to take minutes to hours


def test_generated_smoke_config_is_shopmtls_smoke_config_plus_the_task(tmp_path):
    target = create_plugin(NAME, tmp_path)
    mine = yaml.safe_load((target / "smoke.yaml").read_text())
    theirs = yaml.safe_load(SMOKE_CONFIG.read_text())
    assert mine["tasks"].pop(NAME) == {"max_train_examples": 256, "max_eval_examples": 128}
    assert mine.pop("run_name") == f"{NAME}_smoke" and theirs.pop("run_name") == "smoke"
    assert mine == theirs, (
        "scaffold_templates.SMOKE drifted from examples/configs/smoke.yaml: update it"
    )


# ------------------------------------------------------------------- integration


def _fresh_venv(root: Path) -> Path:
    return fresh_venv(root, needs="setuptools, pip, pytest, shopmtl, torch")


DISCOVER = textwrap.dedent(
    """\
    import json, sys, warnings
    from click.testing import CliRunner
    from shopmtl.core.cli import cli
    from shopmtl.core.mtl.builtin import load_plugins

    name = sys.argv[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plugins = load_plugins(())
    report = next(r.to_dict() for r in plugins.reports if r.name == name)
    import shopmtl_gift_price
    check = CliRunner().invoke(cli, ["plugins", "check", name])
    print(json.dumps({"report": report, "file": shopmtl_gift_price.__file__,
                      "check_code": check.exit_code, "check_output": check.output}))
    """
)


@pytest.mark.integration
def test_scaffolded_plugin_installs_passes_its_tests_and_is_discovered(tmp_path):
    env = clean_env()
    target = create_plugin(NAME, tmp_path / "src")
    python = _fresh_venv(tmp_path)
    run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-build-isolation",
            str(target),
        ],
        env=env,
        cwd=tmp_path,
    )

    # The generated tests, run by the venv's pytest on the *installed* package: -I keeps
    # the source folder off sys.path, so a file missing from the wheel (the CSV) fails here.
    tests = run(
        [str(python), "-I", "-m", "pytest", "-q", "-p", "no:cacheprovider"], env=env, cwd=target
    )
    assert "6 passed" in tests.stdout, tests.stdout

    done = run([str(python), "-I", "-c", DISCOVER, NAME], env=env, cwd=tmp_path)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    report = out["report"]
    assert report["error"] is None, report["error"]
    assert report["source"] == "entry point" and report["distribution"] == "shopmtl-gift-price"
    assert report["version"] == "0.1.0" and report["tasks"] == [NAME]
    assert Path(out["file"]).is_relative_to(python.parents[1]), (
        "imported from the source folder, not the install"
    )
    assert out["check_code"] == 0, out["check_output"]
    assert f"task {NAME}: ok" in out["check_output"]

    # The README's smoke-sized joint runs, as written (the last line, the full default run, is not run).
    with (target / "shopmtl_gift_price" / "data" / f"{NAME}.csv").open() as sample:
        (target / "my_items.csv").write_text(
            "".join(sample.readlines()[:151])
        )  # "your own" file: 150 items
    for command in readme_commands(target)[:-1]:
        done = run(
            [str(python), "-I", "-m", "shopmtl.core.cli", *command[1:]],
            env=env,
            cwd=target,
            timeout=600,
        )
        run_dir = target / command[command.index("--output-dir") + 1]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert NAME in metrics["tasks"] and "Test metrics of the best model" in done.stdout, (
            done.stdout
        )
