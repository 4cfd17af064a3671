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


# --------------------------------------------------------------------- templates

PYPROJECT = '''\
# The shopmtl plugin __DIST__: one task, `__NAME__`. Install it and shopmtl finds it:
#
#     pip install -e '.[test]'
#     shopmtl plugins check __NAME__

[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "shopmtl plugin: the __NAME__ task"
readme = "README.md"
requires-python = ">=3.10"
authors = [{ name = "__AUTHOR__" }]
# The keyword makes shopmtl plugins findable on PyPI (a trove classifier would have
# to be registered with PyPI first, or uploads are rejected).
keywords = ["shopmtl", "shopmtl-plugin"]
classifiers = ["Programming Language :: Python :: 3"]
dependencies = [
    "shopmtl>=__SHOPMTL_VERSION__",
    "numpy>=1.26",
    "pandas>=2.1",
    "scikit-learn>=1.4",   # the metrics
]

[project.optional-dependencies]
test = ["pytest>=8"]

# The line that makes this a shopmtl plugin: plugin name = the module with the hooks.
[project.entry-points.shopmtl]
__NAME__ = "__PACKAGE__.plugin"

[tool.setuptools]
packages = ["__PACKAGE__"]

[tool.setuptools.package-data]
__PACKAGE__ = ["data/*.csv"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

INIT = '''\
"""__DIST__: a shopmtl plugin with one task, ``__NAME__``."""

__version__ = "0.1.0"
'''

PLUGIN = '''\
"""``__NAME__``: the log price of a product, from its title, category and pack size.

A regression task on the small CSV shipped in this package (``data/__NAME__.csv``).
Replace the data and the label with your own; keep the shape -- a ``TaskSpec``, the
``register_tasks`` hook at the bottom, and ``SHOPMTL_HOOK_API`` -- and shopmtl keeps
finding it through the entry point in ``pyproject.toml``.

Head and loss are shopmtl's defaults for a regression task
(``shopmtl.registry.blocks.default_head`` and ``masked_mse``); pass ``build_head=`` or
``loss=`` to the TaskSpec to replace them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import pandas as pd

from shopmtl import BuildContext, EvalBatch, TaskData, TaskSpec, hookimpl

#: The shopmtl hook API this plugin is written for: a shopmtl with another major
#: version refuses the plugin with a message naming both, instead of failing mid-run.
SHOPMTL_HOOK_API = "__HOOK_API__"

#: The sample data shipped with the package (package-data in pyproject.toml).
SAMPLE_DATA = files("__PACKAGE__") / "data" / "__NAME__.csv"


@dataclass(frozen=True)
class __CLASS__Settings:
    """``tasks.__NAME__.settings`` in a shopmtl config; these defaults are the task's defaults."""

    #: A CSV with the sample's columns (item_id, title, category, pack_size, price);
    #: empty: the sample shipped with this package.
    data_file: str = ""
    #: Keep at most this many training rows (0: all), for quick experiments.
    max_train_rows: int = 0

    def __post_init__(self) -> None:
        if self.max_train_rows < 0:
            raise ValueError(f"__NAME__: max_train_rows={self.max_train_rows} must be >= 0 (0 = all)")


def build_dataset(ctx: BuildContext) -> TaskData:
    """Rows split by item id (a stable split: an item never moves between splits)."""
    settings: __CLASS__Settings = ctx.settings or __CLASS__Settings()
    if settings.data_file:
        frame = pd.read_csv(settings.data_file, dtype={"title": str, "category": str})
    else:
        with SAMPLE_DATA.open("r", encoding="utf-8") as handle:
            frame = pd.read_csv(handle, dtype={"title": str, "category": str})
    frame["title"] = frame["title"].fillna("")
    frame["label"] = np.log1p(pd.to_numeric(frame["price"], errors="coerce"))  # NaN: missing label
    bucket = frame["item_id"] % 10
    splits = {
        "train": frame[bucket < 8],
        "val": frame[bucket == 8],
        "test": frame[bucket == 9],
    }
    if settings.max_train_rows:
        splits["train"] = splits["train"].sample(
            n=min(settings.max_train_rows, len(splits["train"])), random_state=ctx.seed
        )
    return TaskData(splits={name: part.reset_index(drop=True) for name, part in splits.items()})


METRIC_DIRECTIONS = {"rmse": "min", "mae": "min", "r2": "max"}


def metrics(batch: EvalBatch) -> dict[str, float]:
    """RMSE, MAE and R² on the log scale (scikit-learn); missing labels skipped."""
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    y = np.asarray(batch.labels, dtype=float)[:, 0]
    pred = np.asarray(batch.predictions, dtype=float)[:, 0]
    present = ~np.isnan(y)
    y, pred = y[present], pred[present]
    if len(y) == 0:
        return {name: float("nan") for name in METRIC_DIRECTIONS}
    return {
        "rmse": float(root_mean_squared_error(y, pred)),
        "mae": float(mean_absolute_error(y, pred)),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
    }


def decode(predictions: np.ndarray) -> pd.DataFrame:
    """What `shopmtl predict` writes: the model's log price, and the price itself."""
    log_price = np.asarray(predictions, dtype=float).reshape(len(predictions), -1)[:, 0]
    return pd.DataFrame({"prediction": log_price, "price": np.expm1(log_price).clip(min=0.0)})


def baselines(data: TaskData, split: str) -> dict[str, dict[str, float]]:
    """The train median, scored on ``split``: the number the model has to beat."""
    median = float(data["train"]["label"].median())
    frame = data[split]
    predict: Callable[[pd.DataFrame], np.ndarray] = lambda rows: np.full((len(rows), 1), median)  # noqa: E731
    batch = EvalBatch(
        split=split, frame=frame, predictions=predict(frame), labels=frame[["label"]].to_numpy(dtype=float),
        score=predict,
    )
    return {"train_median": metrics(batch)}


__CONSTANT__ = TaskSpec(
    name="__NAME__",
    kind="regression",
    description="Log price of a product from its title, category and pack size",
    text="title",
    labels=("label",),
    numeric=("pack_size",),
    categorical=("category",),
    keys=("item_id",),
    build_dataset=build_dataset,
    metrics=metrics,
    metric_directions=METRIC_DIRECTIONS,
    primary_metric="rmse",
    settings=__CLASS__Settings,
    decode=decode,
    baselines=baselines,
)


@hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Register the ``__NAME__`` task."""
    register(__CONSTANT__)
'''

CONFTEST = '''\
# shopmtl's pytest plugin: the `shopmtl_plugins` fixture registers a plugin for one test.
pytest_plugins = ["shopmtl.testing"]
'''

TEST = '''\
"""The __NAME__ task, tested with shopmtl's test kit: no GPU, no downloads, seconds."""

from __future__ import annotations

from shopmtl.testing import assert_valid_task, check_task, run_cli, train_briefly

from __PACKAGE__ import plugin


def test_task_passes_shopmtl_checks():
    # Registration checks, then the dataset built and checked, then one metrics call.
    assert_valid_task(plugin.__CONSTANT__)


def test_settings_change_the_data():
    assert check_task(plugin.__CONSTANT__, settings={"max_train_rows": 20}) == []
    data = plugin.build_dataset(_context(plugin.__CLASS__Settings(max_train_rows=20)))
    assert len(data["train"]) == 20 and len(data["val"]) > 0 and len(data["test"]) > 0


def test_register_tasks_registers_the_task():
    found = []
    plugin.register_tasks(found.append)
    assert [spec.name for spec in found] == ["__NAME__"]


def test_trains_briefly(tmp_path):
    # A few steps of the real trainer on a tiny random encoder: proves it trains end to end.
    result = train_briefly(plugin, steps=8, tmp_path=tmp_path)
    test = result.metrics["__NAME__"]["test"]
    assert set(test) == set(plugin.METRIC_DIRECTIONS)
    assert test["rmse"] is not None


def test_shopmtl_plugins_check_passes(shopmtl_plugins):
    shopmtl_plugins(plugin, name="__NAME__")  # registered for this test only
    result = run_cli("plugins", "check", "__NAME__")
    assert result.exit_code == 0, result.output
    assert "task __NAME__: ok" in result.output


def _context(settings):
    from shopmtl import BuildContext

    return BuildContext(settings=settings)
'''

README = '''\
# __DIST__

A [shopmtl](https://pypi.org/project/shopmtl/) plugin with one task:

| task | kind | predicts | from |
|------|------|----------|------|
| `__NAME__` | regression | `log1p(price)` of a product | its title (text), category, pack size |

The sample data (`__PACKAGE__/data/__NAME__.csv`) ships with the package; point
`tasks.__NAME__.settings.data_file` at your own CSV with the same columns.

## Develop

```bash
pip install -e '.[test]'
python -m pytest                    # contract checks + a brief training run, on CPU
shopmtl plugins                     # __NAME__ is listed, with its version
shopmtl plugins check __NAME__      # the same checks shopmtl runs, in words
```

## Train it jointly with shopmtl's built-in tasks

```bash
shopmtl train tasks.__NAME__={}                       # the default run plus this task
shopmtl train tasks.__NAME__.settings.max_train_rows=100 tasks.__NAME__.weight=2
```

## Publish

```bash
python -m pip install build twine
python -m build
python -m twine upload dist/*
```

Once published, `pip install __DIST__` is all a user needs: shopmtl finds the task
through the `shopmtl` entry point in `pyproject.toml`; the `shopmtl-plugin` keyword
lets people find it on PyPI.
'''
