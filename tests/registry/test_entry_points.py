"""Third-party plugins found the way users get them: pip-installed distributions.

The integration test creates a fresh virtual environment, really ``pip install``\\ s the
example plugin (``examples/shopmtl-example-plugin``) and a deliberately broken plugin
built on the fly, and runs :func:`shopmtl.registry.manager.load_plugins` in that
environment's interpreter: the example is discovered through its ``shopmtl`` entry
point with its distribution's version and task; the broken one is named and skipped,
and strict mode fails on it. No network: ``--no-index --no-deps --no-build-isolation``.

Why a bridge ``.pth`` besides ``--system-site-packages``: a venv created from inside
another venv inherits the *base* interpreter's site-packages, not the outer venv's,
where torch, pandas and the editable shopmtl live. The ``.pth`` file adds the running
interpreter's site directories (with ``site.addsitedir``, so shopmtl's editable-install
finder runs too) after the new venv's own.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import REPO
from venvs import clean_env, fresh_venv, run

EXAMPLE = REPO / "examples" / "shopmtl-example-plugin"


def _example_version() -> str:
    match = re.search(
        r'^version\s*=\s*"([^"]+)"', (EXAMPLE / "pyproject.toml").read_text(), re.MULTILINE
    )
    assert match, "examples/shopmtl-example-plugin/pyproject.toml declares no version"
    return match.group(1)


def _write_broken_plugin(root: Path) -> Path:
    """A plugin distribution whose module raises ImportError when imported."""
    (root / "shopmtl_broken").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "shopmtl-broken"
            version = "6.6.6"

            [project.entry-points.shopmtl]
            broken = "shopmtl_broken.plugin"

            [tool.setuptools]
            packages = ["shopmtl_broken"]
            """
        )
    )
    (root / "shopmtl_broken" / "__init__.py").write_text("")
    (root / "shopmtl_broken" / "plugin.py").write_text(
        "raise ImportError(\"shopmtl_broken needs 'tensorflow', which is not installed\")\n"
    )
    return root


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory) -> Path:
    """A fresh venv with the example plugin and the broken plugin pip-installed; its python."""
    root = tmp_path_factory.mktemp("plugin_venv")
    python = fresh_venv(root)
    env = clean_env()

    # Install from copies: an in-tree build would write build/ and *.egg-info into the repo.
    example = shutil.copytree(
        EXAMPLE,
        root / "src" / "example",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"),
    )
    broken = _write_broken_plugin(root / "src" / "broken")
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
            str(example),
            str(broken),
        ],
        env=env,
        cwd=root,
    )
    return python


PROBE = textwrap.dedent(
    """\
    import json, os, warnings
    from shopmtl.core.mtl.builtin import load_plugins
    from shopmtl.registry.manager import PluginError, PluginWarning

    out = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = load_plugins(())
    out["reports"] = {r.name: r.to_dict() for r in plugins.reports}
    out["task_plugin"] = plugins.task_plugin
    out["versions"] = plugins.versions()
    out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    import shopmtl_basket
    out["basket_file"] = shopmtl_basket.__file__

    try:
        load_plugins((), strict=True)
        out["strict"] = None
    except PluginError as exc:
        out["strict"] = str(exc)

    os.environ["SHOPMTL_STRICT_PLUGINS"] = "1"
    try:
        load_plugins(())
        out["strict_env"] = None
    except PluginError as exc:
        out["strict_env"] = str(exc)

    os.environ["SHOPMTL_PLUGINS"] = "basket_size"  # still strict: the broken one is not even imported
    out["selected"] = sorted(load_plugins(()).task_plugin)
    print(json.dumps(out))
    """
)


@pytest.mark.integration
def test_installed_plugins_are_discovered_and_a_broken_one_is_isolated(plugin_venv):
    done = run([str(plugin_venv), "-c", PROBE], env=clean_env(), cwd=plugin_venv.parent)
    out = json.loads(done.stdout.strip().splitlines()[-1])

    # The example: found through its entry point, from the installed distribution.
    basket = out["reports"]["basket_size"]
    assert basket["error"] is None
    assert basket["source"] == "entry point"
    assert basket["distribution"] == "shopmtl-basket"
    assert basket["version"] == _example_version()
    assert basket["tasks"] == ["basket_size"] and basket["hooks"] == ["register_tasks"]
    assert out["task_plugin"]["basket_size"] == "basket_size"
    assert out["versions"]["basket_size"] == _example_version()
    assert Path(out["basket_file"]).is_relative_to(plugin_venv.parents[1]), (
        "imported from the source tree, not the install"
    )

    # The broken one: named, skipped, and the run goes on.
    broken = out["reports"]["broken"]
    assert broken["distribution"] == "shopmtl-broken" and broken["version"] == "6.6.6"
    assert (
        broken["error"].startswith("could not be imported: ImportError")
        and "tensorflow" in broken["error"]
    )
    assert "broken" not in out["versions"]
    (warning,) = [w for w in out["warnings"] if "'broken'" in w]
    assert "plugin 'broken' (entry point shopmtl_broken.plugin of shopmtl-broken)" in warning
    assert "pip uninstall shopmtl-broken" in warning

    # Strict mode, by argument or environment, fails naming it.
    for key in ("strict", "strict_env"):
        assert out[key] is not None, f"{key}: strict mode did not fail on the broken plugin"
        assert "plugin 'broken'" in out[key] and "tensorflow" in out[key]

    assert out["selected"] == ["basket_size"]


def test_example_plugin_is_a_valid_task_that_builds(tmp_path, monkeypatch):
    """The example stays correct without installing it (fast, runs in every test session)."""
    import numpy as np
    import pandas as pd
    from shopmtl import BuildContext
    from shopmtl.core.mtl.builtin import load_plugins

    monkeypatch.syspath_prepend(str(EXAMPLE))
    from shopmtl_basket import plugin as basket

    plugins = load_plugins([("basket_size", basket)], strict=True, entry_points=[])
    assert plugins.task_plugin == {"basket_size": "basket_size"}

    columns = [
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ]
    rows = [
        [str(600000 + i), f"8{j}000", f"ITEM {j}", 2, "2011-03-01 09:00", 2.5, 13000.0, "Norway"]
        for i in range(30)
        for j in range(1 + i % 4)
    ]
    path = tmp_path / "lines.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    data = basket.BASKET_SIZE.build_dataset(BuildContext(settings=None, data_path=str(path)))
    every = pd.concat([data[s] for s in ("train", "val", "test")])
    assert len(every) == 30 and set(basket.BASKET_SIZE.columns) <= set(every.columns)
    assert np.allclose(every.set_index("invoice").loc["600003", "label"], np.log1p(4))
    baselines = basket.BASKET_SIZE.baselines(data, "train")
    assert set(baselines) == {"train_mean", "train_median"}


@pytest.mark.integration
def test_installed_plugin_is_listed_by_the_cli_and_trains_jointly_with_a_builtin(
    plugin_venv, tmp_path
):
    """What a user does after `pip install shopmtl-basket`: see it, then train it with a built-in task."""
    shopmtl = [str(plugin_venv), "-m", "shopmtl.core.cli"]
    env = {**clean_env(), "SHOPMTL_PLUGINS": "basket_size"}  # leave the deliberately broken one out
    listed = json.loads(
        run([*shopmtl, "plugins", "--json", "--load"], env=env, cwd=tmp_path).stdout
    )
    basket = next(p for p in listed if p["name"] == "basket_size")
    assert basket["version"] == _example_version() and basket["distribution"] == "shopmtl-basket"
    assert basket["tasks"] == ["basket_size"] and basket["error"] is None

    run_dir = tmp_path / "joint"
    done = run(
        [
            *shopmtl,
            "train",
            str(REPO / "examples" / "configs" / "smoke.yaml"),
            "--task",
            "basket_size",
            "--task",
            "price_bin",
            "--output-dir",
            str(run_dir),
            "tasks.basket_size.max_train_examples=256",
            "tasks.basket_size.max_eval_examples=128",
        ],
        env=env,
        cwd=tmp_path,
    )
    assert "basket_size (regression)" in done.stdout and "price_bin (multiclass)" in done.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"basket_size", "price_bin"}
    assert metrics["tasks"]["basket_size"]["test"]["rmse"] is not None
    assert sorted(p.name for p in (run_dir / "model" / "heads").iterdir()) == [
        "basket_size.safetensors",
        "price_bin.safetensors",
    ]
    owners = json.loads((run_dir / "plugins.json").read_text())["tasks"]
    assert owners == {"basket_size": "basket_size", "price_bin": "price_bin"}
