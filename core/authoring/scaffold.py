"""``shopmtl new-plugin NAME``: a plugin package that installs, registers and passes its tests as generated.

The package (``shopmtl-NAME/``) holds one task, ``NAME``, of the kind ``--kind`` asks
for (:data:`shopmtl.core.authoring.scaffold_kinds.KINDS`: a price regression, a bestseller flag, a
price band, product tags) on a small product CSV generated here and shipped inside the
wheel, with a ``data_file`` setting for the author's own file, a stable split, a
baseline and scikit-learn metrics; plus tests written with :mod:`shopmtl.testing` and a
smoke-sized config for a joint run with the built-in tasks. The author replaces the data
and the label; the layout stays.

Templates are plain strings with ``__PLACEHOLDER__`` markers (not ``str.format``: the
generated code has braces of its own), so they need no package data.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import keyword
import re
from collections.abc import Callable
from pathlib import Path

from shopmtl.core.authoring.scaffold_kinds import KINDS, KindTemplate, sample_rows
from shopmtl.core.authoring.templates import CONFTEST, INIT, PLUGIN, PYPROJECT, README, SMOKE, TEST

__all__ = ["KINDS", "PluginNameError", "create_plugin", "plugin_files", "validate_plugin_name"]

#: A plugin name: lower-case words joined by single underscores (it is also the task
#: name, the entry-point name, and part of the package and distribution names).
PLUGIN_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class PluginNameError(ValueError):
    """NAME cannot be used for a new plugin; the message says why and what to use."""


def validate_plugin_name(name: str, output_dir: Path | None = None) -> None:
    """Raise :class:`PluginNameError` unless ``name`` can name a new plugin (and its folder is free)."""
    if not PLUGIN_NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        if suggestion and not suggestion[0].isalpha():
            suggestion = f"task_{suggestion}"
        hint = f" (e.g. {suggestion!r})" if suggestion and PLUGIN_NAME.fullmatch(suggestion) else ""
        raise PluginNameError(
            f"plugin name {name!r} is not valid: use lower-case letters and digits in words joined by "
            f"single '_', starting with a letter{hint} -- it becomes the task name, the entry point and the "
            f"package shopmtl_<name>"
        )
    if keyword.iskeyword(name):
        raise PluginNameError(f"plugin name {name!r} is a Python keyword: choose another name")
    taken = _builtin_names()
    if name in taken:
        raise PluginNameError(
            f"plugin name {name!r} is taken by a built-in {taken[name]}: choose another name, e.g. "
            f"{'my_' + name!r} or {name + '_v2'!r} (shopmtl tasks lists the names in use)"
        )
    from shopmtl.registry.hookspecs import ENTRY_POINT_GROUP

    installed = {
        ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    }
    if name in installed:
        raise PluginNameError(
            f"an installed plugin is already called {name!r} (entry point {installed[name]}): choose another name"
        )
    if output_dir is not None:
        target = output_dir / folder_name(name)
        if target.exists():
            raise PluginNameError(
                f"{target} already exists: remove it, or pass another --output-dir"
            )


def folder_name(name: str) -> str:
    """The package folder and distribution name: ``shopmtl-NAME`` with ``-`` for ``_``."""
    return "shopmtl-" + name.replace("_", "-")


def create_plugin(
    name: str, output_dir: Path | str = ".", *, author: str = "Your Name", kind: str = "regression"
) -> Path:
    """Write the plugin package for ``name`` (a task of ``kind``) under ``output_dir``; return its folder.

    :raises PluginNameError: invalid or taken name, or the folder exists.
    :raises ValueError: ``kind`` is not one of :data:`KINDS`.
    """
    output_dir = Path(output_dir)
    validate_plugin_name(name, output_dir)
    target = output_dir / folder_name(name)
    files = plugin_files(name, author=author, kind=kind)
    target.mkdir(parents=True)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target


def plugin_files(
    name: str, *, author: str = "Your Name", kind: str = "regression"
) -> dict[str, str]:
    """Relative path -> text of every file of the package for ``name`` (nothing written).

    :raises ValueError: ``kind`` is not one of :data:`KINDS`.
    """
    template = _kind(kind)
    package = f"shopmtl_{name}"
    fill = _filler(name, author, template)
    return {
        "pyproject.toml": fill(PYPROJECT),
        "README.md": fill(README),
        "smoke.yaml": fill(SMOKE),
        f"{package}/__init__.py": fill(INIT),
        f"{package}/plugin.py": fill(PLUGIN),
        f"{package}/data/{name}.csv": sample_csv(kind),
        "tests/conftest.py": fill(CONFTEST),
        "tests/test_plugin.py": fill(TEST),
    }


def _kind(kind: str) -> KindTemplate:
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}: use one of {', '.join(KINDS)}")
    return KINDS[kind]


def _filler(name: str, author: str, template: KindTemplate) -> Callable[[str], str]:
    """A function that fills a template's ``__PLACEHOLDER__`` markers for this plugin and kind.

    The kind's code pieces go in first: they hold ``__NAME__``-style markers themselves.
    """
    from shopmtl import __version__
    from shopmtl.registry.hookspecs import HOOK_API_VERSION

    columns = sample_rows(template.kind, rows=0)[0]
    values = {
        "__CONSTANTS__": template.constants,
        "__SETTINGS_FIELDS__": template.settings_fields,
        "__ADD_LABELS__": template.add_labels,
        "__METRICS__": template.metrics,
        "__BASELINE_ROW__": template.constant,
        "__BASELINE_NAME__": template.baseline_name,
        "__SPEC_FIELDS__": template.spec_fields,
        "__EXTRA__": template.extra,
        "__SUMMARY__": template.summary,
        "__DESCRIPTION__": template.summary[:1].upper() + template.summary[1:],
        "__COLUMNS__": ",".join(columns),
        "__KIND__": template.kind,
        "__NAME__": name,
        "__PACKAGE__": f"shopmtl_{name}",
        "__DIST__": folder_name(name),
        "__CLASS__": "".join(part.capitalize() for part in name.split("_")),
        "__CONSTANT__": name.upper(),
        "__AUTHOR__": author.replace('"', "'"),
        "__SHOPMTL_VERSION__": __version__,
        "__HOOK_API__": HOOK_API_VERSION,
    }

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace(key, value)
        return text

    return fill


def sample_csv(kind: str = "regression", rows: int = 300, seed: int = 7) -> str:
    """The sample data of a ``kind`` task as CSV text (deterministic; see :func:`sample_rows`)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(sample_rows(kind, rows, seed))
    return out.getvalue()


def _builtin_names() -> dict[str, str]:
    """Names a new plugin must not take: built-in plugins and their tasks."""
    names = {"shopmtl": "plugin (shopmtl's own samplers and weightings)"}
    try:
        from shopmtl.plugins.builtin import BUILTIN_PLUGINS
    except ImportError:  # the built-ins cannot load here: nothing more to compare with
        return names
    for plugin_name, module in BUILTIN_PLUGINS:
        names.setdefault(plugin_name, "plugin")
        found: list[object] = []
        register = getattr(module, "register_tasks", None)
        if callable(register):
            try:
                register(found.append)
            except Exception:  # noqa: BLE001, S112 -- a broken built-in must not stop scaffolding
                continue
        for spec in found:
            task = getattr(spec, "name", None)
            if isinstance(task, str):
                names[task] = "task"
    return names
