"""One public API: what the docs show plugin authors is importable from ``shopmtl`` (or the kit),
and every path 0.1 showed them still resolves, with a DeprecationWarning naming the new import."""

from __future__ import annotations

import ast
import importlib
import re
import warnings

import pytest
import shopmtl
from conftest import REPO

#: Where 0.1 showed plugin authors an import: its docs, README, example package, scaffold templates.
AUTHOR_FACING = [
    REPO / "docs" / "plugins.md",
    REPO / "docs" / "tasks.md",
    REPO / "README.md",
    *sorted((REPO / "examples" / "shopmtl-example-plugin").rglob("*.py")),
    REPO / "examples" / "shopmtl-example-plugin" / "README.md",
    REPO / "core" / "authoring" / "templates.py",
]
PUBLIC_MODULES = {"shopmtl", "shopmtl.testing"}
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def shopmtl_imports(path) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``from shopmtl... import name`` / ``import shopmtl...`` in the file's code."""
    text = path.read_text(encoding="utf-8")
    sources = _PYTHON_BLOCK.findall(text) if path.suffix == ".md" else [text]
    if path.name == "templates.py":  # the templates are strings: the code is inside them
        sources = [
            node.value
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "import" in node.value
        ]
    found = []
    for source in sources:
        for line in source.splitlines():
            match = re.match(r"\s*from (shopmtl(?:\.\w+)*) import \(?([\w, ]+)", line)
            if match:
                found += [
                    (match.group(1), n.strip()) for n in match.group(2).split(",") if n.strip()
                ]
            match = re.match(r"\s*import (shopmtl(?:\.\w+)*)(?:\s|$)", line)
            if match:
                found.append((match.group(1), ""))
    return found


@pytest.mark.parametrize("path", AUTHOR_FACING, ids=lambda p: str(p.relative_to(REPO)))
def test_author_facing_code_imports_only_the_public_api(path):
    wrong = [
        f"{module}.{name}" for module, name in shopmtl_imports(path) if module not in PUBLIC_MODULES
    ]
    assert not wrong, (
        f"{path.name} imports {wrong}: import them from `shopmtl` (or the kit from `shopmtl.testing`)"
    )


def test_every_public_name_resolves():
    for name in shopmtl.__all__:
        assert getattr(shopmtl, name) is not None
    from shopmtl import retail

    assert retail.DEFAULT_DATA_PATH.is_file()  # the bundled data, found from its new home


def test_version_comes_from_the_package_metadata():
    assert shopmtl.__version__ == importlib.metadata.version("shopmtl")


#: 0.1's import paths (docs/plugins.md, README, the example package, the scaffold templates)
#: -> the import that replaces each.
DEPRECATED = [
    ("shopmtl.registry.contract", "MetricSpec", "from shopmtl import MetricSpec"),
    ("shopmtl.registry.contract", "TaskSpec", "from shopmtl import TaskSpec"),
    ("shopmtl.registry.contract", "SPLITS", "from shopmtl.registry.spec import SPLITS"),
    (
        "shopmtl.registry.blocks",
        "log1p_regression_metrics",
        "from shopmtl import log1p_regression_metrics",
    ),
    ("shopmtl.registry.validate", "validate_task", "from shopmtl import validate_task"),
    # 0.2 moved the building blocks out of the plugin contract.
    ("shopmtl.registry.blocks", "decode_by_kind", "from shopmtl import decode_by_kind"),
    (
        "shopmtl.registry.blocks",
        "default_head",
        "from shopmtl.core.model.heads import default_head",
    ),
    ("shopmtl.registry.blocks", "masked_mse", "from shopmtl.core.model.losses import masked_mse"),
    ("shopmtl.plugins.retail", "load_transactions", "from shopmtl import retail"),
    ("shopmtl.plugins.retail", "split_of", "from shopmtl import retail"),
]


@pytest.mark.parametrize(("module", "name", "instead"), DEPRECATED)
def test_old_import_paths_still_resolve_with_a_warning_naming_the_new_import(module, name, instead):
    new_module, new_name = re.match(r"from (\S+) import (\w+)", instead).groups()
    new = getattr(importlib.import_module(new_module), new_name)
    with pytest.warns(DeprecationWarning, match=re.escape(instead)):
        old = getattr(importlib.import_module(module), name)
    assert old is (new if new_name == name else getattr(new, name))


def test_the_from_import_form_warns_too():
    with pytest.warns(DeprecationWarning, match="from shopmtl import MetricSpec"):
        from shopmtl.registry.contract import MetricSpec
    assert MetricSpec is shopmtl.MetricSpec


def test_new_paths_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from shopmtl import (  # noqa: F401
            MetricSpec,
            decode_by_kind,  # noqa: F401
            retail,
            validate_task,
        )
        from shopmtl.core.model.heads import default_head  # noqa: F401


def test_an_unknown_name_on_an_old_path_is_an_attribute_error():
    from shopmtl.registry import contract

    with pytest.raises(AttributeError, match="no_such_name"):
        contract.no_such_name  # noqa: B018


def test_shopmtl_itself_uses_no_deprecated_path():
    """Every module of the package imports cleanly with deprecation warnings as errors."""
    import pkgutil
    import subprocess
    import sys

    names = [
        m.name
        for m in pkgutil.walk_packages(shopmtl.__path__, "shopmtl.")
        if m.name
        not in {
            "shopmtl.registry.contract",
            "shopmtl.registry.validate",
            "shopmtl.plugins.retail",
            "shopmtl.core.cli.__main__",
        }
    ]
    code = (
        "import importlib, sys, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    for name in sys.argv[1:]:\n"
        "        importlib.import_module(name)\n"
        "print('\\n'.join(str(w.message) for w in caught if 'goes away in shopmtl' in str(w.message)))\n"
    )
    # A fresh interpreter: in this one the modules are already imported, so nothing would warn.
    result = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "", (
        f"shopmtl imports its own deprecated paths:\n{result.stdout}"
    )
