"""The house's layering is enforced, not just drawn: import-linter's contracts (pyproject.toml)
hold, a wrong-way import breaks them, benchmarks/ drive the engine through its public API only,
and no module or function (package or benchmark) outgrows the size a reader takes in at once."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGE_FILES = ["__init__.py", "testing.py", "core", "registry", "plugins"]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
#: What a benchmark may import of shopmtl: the plugin authors' API, their test kit, and the
#: engine's public API (shopmtl/core/api.py). Anything else may move between releases.
PUBLIC_MODULES = {"shopmtl", "shopmtl.testing", "shopmtl.core.api"}
BENCHMARKS = sorted((REPO / "benchmarks").glob("*.py"))


def lint_imports(package_parent: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``lint-imports`` on pyproject.toml's contracts (on a copy of the package, if given)."""
    env = dict(os.environ)
    if package_parent is not None:  # found before the installed (editable) package
        env["PYTHONPATH"] = os.pathsep.join([str(package_parent), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=package_parent or REPO,
        timeout=300,
    )


def test_the_import_contracts_hold():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("registry/manager.py", "from shopmtl.core import config", "registry is the ground floor"),
        ("core/data/prepare.py", "from shopmtl.core.engine import trainer", "core/ rooms"),
        ("plugins/sales.py", "from shopmtl.core import config", "plugins use only the public API"),
        ("core/runs/checkpoint.py", "from shopmtl.core.runs import state", "no import circle"),
        ("core/cli/main.py", "from shopmtl.core import api", "core/ rooms"),
    ],
)
def test_a_wrong_way_import_breaks_a_contract(tmp_path, module, line, contract):
    copy = tmp_path / "shopmtl"
    for name in PACKAGE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            copy.mkdir(exist_ok=True)
            shutil.copy(source, copy / name)
    target = copy / module
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n{line}  # deliberately wrong\n", encoding="utf-8"
    )
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout
    broken = [row for row in result.stdout.splitlines() if "BROKEN" in row or contract in row]
    assert any(contract in row for row in broken), result.stdout


def private_imports(source: str) -> list[str]:
    """The shopmtl imports of ``source`` outside :data:`PUBLIC_MODULES`, as written."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from shopmtl.core import api`` imports shopmtl.core.api; any other name of a
            # package is a module or an attribute of it.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in PUBLIC_MODULES else node.module for n in names]
        else:
            continue
        found += [n for n in names if n.split(".")[0] == "shopmtl" and n not in PUBLIC_MODULES]
    return found


#: The one benchmark allowed past the public API, and why.
#: prior_load.py times the pre-0.2 pickled priors, which held the scikit-learn estimators that
#: only the built-in plugins' own fit functions return (a prior's ``fit`` now returns arrays).
BENCHMARK_EXCEPTIONS = {"prior_load.py": {"shopmtl.plugins"}}


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmarks_use_only_the_public_api(path):
    allowed = BENCHMARK_EXCEPTIONS.get(path.name, set())
    wrong = [n for n in private_imports(path.read_text(encoding="utf-8")) if n not in allowed]
    assert not wrong, (
        f"benchmarks/{path.name} imports {sorted(set(wrong))}: use shopmtl, shopmtl.testing or "
        "shopmtl.core.api (add a documented name there if a benchmark truly needs one)"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from shopmtl.core import api\nfrom shopmtl import TaskSpec", []),
        ("from shopmtl.core.api import load_run\nimport shopmtl.testing", []),
        ("from shopmtl.core.engine.predict import load_run", ["shopmtl.core.engine.predict"]),
        ("def f():\n    from shopmtl.plugins import sales", ["shopmtl.plugins"]),
        ("from shopmtl.core import config", ["shopmtl.core"]),
        ("import shopmtl.registry.manager", ["shopmtl.registry.manager"]),
    ],
)
def test_the_benchmark_import_check_tells_public_from_private(source, expected):
    assert private_imports(source) == expected


def package_modules() -> list[Path]:
    return sorted(
        p
        for name in PACKAGE_FILES
        for p in ([REPO / name] if name.endswith(".py") else (REPO / name).rglob("*.py"))
    )


@pytest.mark.parametrize(
    "path", package_modules() + BENCHMARKS, ids=lambda p: str(p.relative_to(REPO))
)
def test_modules_and_functions_stay_small(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, (
        f"{path.name}: split it by concern (see docs/architecture.md)"
    )
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: {long} -- name the phases and give each a function"


def test_train_reads_like_a_recipe():
    from shopmtl.core.engine import trainer

    tree = ast.parse(Path(trainer.__file__).read_text(encoding="utf-8"))
    train = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train")
    assert train.end_lineno - train.lineno + 1 <= 60


def test_every_package_folder_is_in_the_explicit_package_list():
    """A normal (non-editable) install ships only the listed packages: a new folder must be listed."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        "shopmtl." + ".".join(p.parent.relative_to(REPO).parts)
        for room in ("core", "plugins", "registry")
        for p in (REPO / room).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
