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
import io
import json
import textwrap
from pathlib import Path

import pytest
from venvs import clean_env, fresh_venv, run

from shopmtl.core.authoring.scaffold import create_plugin, folder_name, plugin_files
from shopmtl.registry.manager import ENV_PLUGINS, ENV_STRICT, load_plugins
from shopmtl.testing import assert_valid_task

NAME = "gift_price"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(ENV_PLUGINS, raising=False)
    monkeypatch.delenv(ENV_STRICT, raising=False)


def test_generated_package_layout(tmp_path):
    target = create_plugin(NAME, tmp_path, author="Ada")
    assert target == tmp_path / "shopmtl-gift-price" == tmp_path / folder_name(NAME)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == sorted(plugin_files(NAME))

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "shopmtl-gift-price"
    assert project["project"]["entry-points"]["shopmtl"] == {NAME: "shopmtl_gift_price.plugin"}
    assert "shopmtl-plugin" in project["project"]["keywords"]
    assert any(d.startswith("shopmtl>=") for d in project["project"]["dependencies"])
    assert project["tool"]["setuptools"]["package-data"] == {"shopmtl_gift_price": ["data/*.csv"]}
    assert project["project"]["authors"] == [{"name": "Ada"}]

    rows = list(csv.DictReader(io.StringIO((target / "shopmtl_gift_price" / "data" / f"{NAME}.csv").read_text())))
    assert len(rows) == 300 and set(rows[0]) == {"item_id", "title", "category", "pack_size", "price"}
    assert (target / "tests" / "conftest.py").read_text().strip().endswith('pytest_plugins = ["shopmtl.testing"]')


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
    from shopmtl import BuildContext

    return BuildContext(settings=settings)


# ------------------------------------------------------------------- integration


def _fresh_venv(root: Path) -> Path:
    return fresh_venv(root, needs="setuptools, pip, pytest, shopmtl, torch")


DISCOVER = textwrap.dedent(
    """\
    import json, sys, warnings
    from click.testing import CliRunner
    from shopmtl.core.cli import cli
    from shopmtl.registry.manager import load_plugins

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
    run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation", str(target)],
         env=env, cwd=tmp_path)

    # The generated tests, run by the venv's pytest on the *installed* package: -I keeps
    # the source folder off sys.path, so a file missing from the wheel (the CSV) fails here.
    tests = run([str(python), "-I", "-m", "pytest", "-q", "-p", "no:cacheprovider"], env=env, cwd=target)
    assert "5 passed" in tests.stdout, tests.stdout

    done = run([str(python), "-I", "-c", DISCOVER, NAME], env=env, cwd=tmp_path)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    report = out["report"]
    assert report["error"] is None, report["error"]
    assert report["source"] == "entry point" and report["distribution"] == "shopmtl-gift-price"
    assert report["version"] == "0.1.0" and report["tasks"] == [NAME]
    assert Path(out["file"]).is_relative_to(python.parents[1]), "imported from the source folder, not the install"
    assert out["check_code"] == 0, out["check_output"]
    assert f"task {NAME}: ok" in out["check_output"]
