"""``shopmtl new-plugin NAME``: a plugin package that installs, registers and passes its tests as generated.

The package (``shopmtl-NAME/``) holds one regression task, ``NAME``: the log price of
a product from its title, category and pack size, on a small CSV generated here and
shipped inside the package. The author replaces the data and the label; the layout --
entry point, ``SHOPMTL_HOOK_API``, a settings dataclass, scikit-learn metrics, tests
written with :mod:`shopmtl.testing` -- stays.

Templates are plain strings with ``__PLACEHOLDER__`` markers (not ``str.format``: the
generated code has braces of its own), so they need no package data.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import keyword
import math
import random
import re
from pathlib import Path

from shopmtl.core.authoring.templates import CONFTEST, INIT, PLUGIN, PYPROJECT, README, TEST

__all__ = ["PluginNameError", "create_plugin", "plugin_files", "validate_plugin_name"]

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

    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name in installed:
        raise PluginNameError(
            f"an installed plugin is already called {name!r} (entry point {installed[name]}): choose another name"
        )
    if output_dir is not None:
        target = output_dir / folder_name(name)
        if target.exists():
            raise PluginNameError(f"{target} already exists: remove it, or pass another --output-dir")


def folder_name(name: str) -> str:
    """The package folder and distribution name: ``shopmtl-NAME`` with ``-`` for ``_``."""
    return "shopmtl-" + name.replace("_", "-")


def create_plugin(name: str, output_dir: Path | str = ".", *, author: str = "Your Name") -> Path:
    """Write the plugin package for ``name`` under ``output_dir``; return its folder.

    :raises PluginNameError: invalid or taken name, or the folder exists.
    """
    output_dir = Path(output_dir)
    validate_plugin_name(name, output_dir)
    target = output_dir / folder_name(name)
    files = plugin_files(name, author=author)
    target.mkdir(parents=True)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target


def plugin_files(name: str, *, author: str = "Your Name") -> dict[str, str]:
    """Relative path -> text of every file of the package for ``name`` (nothing written)."""
    from shopmtl import __version__
    from shopmtl.registry.hookspecs import HOOK_API_VERSION

    package = f"shopmtl_{name}"
    values = {
        "__NAME__": name,
        "__PACKAGE__": package,
        "__DIST__": folder_name(name),
        "__CLASS__": "".join(part.capitalize() for part in name.split("_")),
        "__CONSTANT__": name.upper(),
        "__AUTHOR__": author.replace('"', "'"),
        "__SHOPMTL_VERSION__": __version__,
        "__HOOK_API__": HOOK_API_VERSION,
    }

    def fill(template: str) -> str:
        for key, value in values.items():
            template = template.replace(key, value)
        return template

    return {
        "pyproject.toml": fill(PYPROJECT),
        "README.md": fill(README),
        f"{package}/__init__.py": fill(INIT),
        f"{package}/plugin.py": fill(PLUGIN),
        f"{package}/data/{name}.csv": sample_csv(),
        "tests/conftest.py": fill(CONFTEST),
        "tests/test_plugin.py": fill(TEST),
    }


def sample_csv(rows: int = 300, seed: int = 7) -> str:
    """A small product table: ``item_id,title,category,pack_size,price`` (deterministic).

    The price follows the title's words (item, size, material) and the pack size, with
    noise, so a model has something to learn; ``pack_size`` is missing on ~5% of rows.
    """
    rng = random.Random(seed)
    items = {  # item: (category, base price)
        "mug": ("kitchen", 2.5), "teapot": ("kitchen", 9.0), "tin": ("kitchen", 3.0), "bag": ("storage", 1.7),
        "basket": ("storage", 6.5), "box": ("storage", 4.0), "lantern": ("decor", 7.5), "clock": ("decor", 8.5),
        "frame": ("decor", 3.5), "candle": ("decor", 1.3),
    }
    sizes = {"mini": 0.6, "small": 0.8, "": 1.0, "large": 1.4, "jumbo": 2.0}
    materials = {"paper": 0.5, "cotton": 0.8, "glass": 1.2, "ceramic": 1.3, "wooden": 1.5, "metal": 1.6}
    colours = ["red", "blue", "pink", "white", "green", "vintage", "retro", "floral"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["item_id", "title", "category", "pack_size", "price"])
    for item_id in range(1, rows + 1):
        item = rng.choice(list(items))
        size, material, colour = rng.choice(list(sizes)), rng.choice(list(materials)), rng.choice(colours)
        category, base = items[item]
        pack = rng.choice([1, 1, 1, 2, 4, 6, 12])
        price = base * sizes[size] * materials[material] * pack**0.8 * math.exp(rng.gauss(0.0, 0.15))
        title = " ".join(w for w in (size, colour, material, item) if w).upper()
        writer.writerow([item_id, title, category, "" if rng.random() < 0.05 else pack, f"{price:.2f}"])
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
            except Exception:  # noqa: BLE001 -- a broken built-in must not stop scaffolding
                continue
        for spec in found:
            task = getattr(spec, "name", None)
            if isinstance(task, str):
                names[task] = "task"
    return names
