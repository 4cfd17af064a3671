"""The files ``shopmtl new-plugin`` writes, as templates: ``__NAME__``-style placeholders that
:func:`shopmtl.core.authoring.scaffold.plugin_files` fills in."""

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
