"""The files ``shopmtl new-plugin`` writes, as templates: ``__NAME__``-style placeholders that
:func:`shopmtl.core.authoring.scaffold.plugin_files` fills in."""

PYPROJECT = """\
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
"""

INIT = '''\
"""__DIST__: a shopmtl plugin with one task, ``__NAME__``."""

__version__ = "0.1.0"
'''

PLUGIN = '''\
"""``__NAME__``: __SUMMARY__.

A __KIND__ task on its own data: the CSV shipped in this package
(``data/__NAME__.csv``, package data in ``pyproject.toml``), or the file that
``tasks.__NAME__.settings.data_file`` names. Replace the data and the label with your
own; keep the shape -- a ``TaskSpec``, the ``register_tasks`` hook at the bottom, and
``SHOPMTL_HOOK_API`` -- and shopmtl keeps finding it through the entry point.

Head and loss are shopmtl's defaults for a __KIND__ task
(``shopmtl.core.model.heads``, ``shopmtl.core.model.losses``); pass ``build_head=`` or ``loss=`` to the TaskSpec to
replace them.
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

__CONSTANTS__


@dataclass(frozen=True)
class __CLASS__Settings:
    """``tasks.__NAME__.settings`` in a shopmtl config; these defaults are the task's defaults."""

    #: A CSV with the sample's columns; empty: the sample shipped with this package.
    data_file: str = ""
    #: Keep at most this many training rows (0: all), for quick experiments.
    max_train_rows: int = 0
__SETTINGS_FIELDS__
    def __post_init__(self) -> None:
        if self.max_train_rows < 0:
            raise ValueError(f"__NAME__: max_train_rows={self.max_train_rows} must be >= 0 (0 = all)")


def read_rows(settings: __CLASS__Settings) -> pd.DataFrame:
    """The rows of ``settings.data_file``, or of the sample shipped in the package."""
    dtypes = {"title": str, "category": str}
    if settings.data_file:
        return pd.read_csv(settings.data_file, dtype=dtypes)
    with SAMPLE_DATA.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=dtypes)


def add_labels(frame: pd.DataFrame, settings: __CLASS__Settings) -> pd.DataFrame:
__ADD_LABELS__


def build_dataset(ctx: BuildContext) -> TaskData:
    """Rows split by item id (a stable split: an item never moves between splits)."""
    settings: __CLASS__Settings = ctx.settings or __CLASS__Settings()
    frame = add_labels(read_rows(settings), settings)
    frame["title"] = frame["title"].fillna("")
    bucket = frame["item_id"] % 10
    splits = {"train": frame[bucket < 8], "val": frame[bucket == 8], "test": frame[bucket == 9]}
    if settings.max_train_rows:
        splits["train"] = splits["train"].sample(
            n=min(settings.max_train_rows, len(splits["train"])), random_state=ctx.seed
        )
    return TaskData(splits={name: part.reset_index(drop=True) for name, part in splits.items()})


def _present(batch: EvalBatch) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions of the rows whose labels are all present."""
    labels = np.asarray(batch.labels, dtype=float)
    predictions = np.asarray(batch.predictions, dtype=float)
    keep = ~np.isnan(labels).any(axis=1)
    return labels[keep], predictions[keep]


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
__METRICS__


def metrics(batch: EvalBatch) -> dict[str, float]:
    """``scores`` of the rows whose labels are present; NaN for every metric when there are none."""
    y, pred = _present(batch)
    if len(y) == 0:
        return {name: float("nan") for name in METRIC_DIRECTIONS}
    return scores(y, pred)


def constant_prediction(train: pd.DataFrame) -> np.ndarray:
__BASELINE_ROW__


def baselines(data: TaskData, split: str) -> dict[str, dict[str, float]]:
    """``__BASELINE_NAME__``: one prediction for every row, fitted on train; the number to beat."""
    row = constant_prediction(data["train"])
    frame = data[split]
    predict: Callable[[pd.DataFrame], np.ndarray] = lambda rows: np.tile(row, (len(rows), 1))  # noqa: E731
    batch = EvalBatch(
        split=split, frame=frame, predictions=predict(frame), labels=frame[list(LABELS)].to_numpy(dtype=float),
        score=predict,
    )
    return {"__BASELINE_NAME__": metrics(batch)}
__EXTRA__

__CONSTANT__ = TaskSpec(
    name="__NAME__",
    kind="__KIND__",
    description="__DESCRIPTION__",
    text="title",
    labels=LABELS,
__SPEC_FIELDS__
    keys=("item_id",),
    build_dataset=build_dataset,
    metrics=metrics,
    metric_directions=METRIC_DIRECTIONS,
    primary_metric=PRIMARY_METRIC,
    settings=__CLASS__Settings,
    baselines=baselines,
)


@hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Register the ``__NAME__`` task."""
    register(__CONSTANT__)
'''

CONFTEST = """\
# shopmtl's pytest plugin: the `shopmtl_plugins` fixture registers a plugin for one test.
pytest_plugins = ["shopmtl.testing"]
"""

TEST = '''\
"""The __NAME__ task, tested with shopmtl's test kit: no GPU, no downloads, seconds."""

from __future__ import annotations

import pandas as pd

from shopmtl import BuildContext
from shopmtl.testing import assert_valid_task, check_task, run_cli, train_briefly

from __PACKAGE__ import plugin


def test_task_passes_shopmtl_checks():
    # Registration checks, then the dataset built and checked, then metrics and baselines once.
    assert_valid_task(plugin.__CONSTANT__)


def test_settings_change_the_data():
    assert check_task(plugin.__CONSTANT__, settings={"max_train_rows": 20}) == []
    data = plugin.build_dataset(BuildContext(settings=plugin.__CLASS__Settings(max_train_rows=20)))
    assert len(data["train"]) == 20 and len(data["val"]) > 0 and len(data["test"]) > 0


def test_data_file_setting_reads_your_own_csv(tmp_path):
    with plugin.SAMPLE_DATA.open("r", encoding="utf-8") as handle:
        mine = pd.read_csv(handle).head(100)
    path = tmp_path / "mine.csv"
    mine.to_csv(path, index=False)
    data = plugin.build_dataset(BuildContext(settings=plugin.__CLASS__Settings(data_file=str(path))))
    assert sum(len(data[split]) for split in ("train", "val", "test")) == 100


def test_register_tasks_registers_the_task():
    found = []
    plugin.register_tasks(found.append)
    assert [spec.name for spec in found] == ["__NAME__"]


def test_trains_briefly(tmp_path):
    # A few steps of the real trainer on a tiny random encoder: proves it trains end to end.
    result = train_briefly(plugin, steps=8, tmp_path=tmp_path)
    test = result.metrics["__NAME__"]["test"]
    assert set(test) == set(plugin.METRIC_DIRECTIONS)
    assert test[plugin.PRIMARY_METRIC] is not None


def test_shopmtl_plugins_check_passes(shopmtl_plugins):
    shopmtl_plugins(plugin, name="__NAME__")  # registered for this test only
    result = run_cli("plugins", "check", "__NAME__")
    assert result.exit_code == 0, result.output
    assert "task __NAME__: ok" in result.output
'''

#: A smoke-sized joint run: examples/configs/smoke.yaml of shopmtl (the four built-in
#: tasks on a slice of its data, a tiny random encoder, 12 steps) plus this task.
SMOKE = """\
# shopmtl train smoke.yaml --output-dir runs/smoke
# The four built-in tasks and __NAME__ on small slices of their data, a tiny randomly
# initialised encoder and 12 steps: the whole pipeline in about a minute on a laptop CPU.
# It proves the joint run works end to end, not that the model learns: for that, use
# shopmtl's default encoder (drop `encoder:`) and more steps.
run_name: __NAME___smoke
seed: 0
encoder:
  random_init: true       # no pretrained weights: only the tokenizer of `name` is used
  random_init_layers: 2
  random_init_hidden: 32
  max_length: 48
tasks:
  __NAME__: {max_train_examples: 256, max_eval_examples: 128}
  sales: {max_train_examples: 256, max_eval_examples: 256}
  price_bin: {max_train_examples: 256, max_eval_examples: 128}
  user_profile: {max_train_examples: 256, max_eval_examples: 64}
  recommend:
    max_train_examples: 256
    max_eval_examples: 256
    settings: {ranking_negatives: 19}
training:
  batch_size: 16
  eval_batch_size: 128
  max_steps: 12
  eval_every: 6
  head_learning_rate: 3.0e-3
  learning_rate: 1.0e-3
"""

README = """\
# __DIST__

A [shopmtl](https://pypi.org/project/shopmtl/) plugin with one task:

| task | kind | predicts |
|------|------|----------|
| `__NAME__` | __KIND__ | __SUMMARY__ |

The data (`__PACKAGE__/data/__NAME__.csv`, synthetic) ships inside the wheel; point
`tasks.__NAME__.settings.data_file` at your own CSV with the same columns
(`__COLUMNS__`). Rows are split by `item_id` (last digit 8: val, 9: test, else train),
so an item never moves between splits. `shopmtl train` prints the model's test metrics
beside the `__BASELINE_NAME__` baseline.

## Develop

```bash
pip install -e '.[test]'
python -m pytest                    # contract checks + a brief training run, on CPU
shopmtl plugins                     # __NAME__ is listed as loaded, with its version
shopmtl plugins check __NAME__      # builds the data, checks labels and metrics, in words
```

## Train it jointly with shopmtl's built-in tasks

Start with the smoke-sized run in `smoke.yaml` (a tiny encoder, 12 steps, about a
minute on a CPU), then the real thing:

```bash
shopmtl train smoke.yaml --output-dir runs/smoke                                   # all built-ins + __NAME__
shopmtl train smoke.yaml --task __NAME__ --task price_bin --output-dir runs/pair   # just two tasks
shopmtl train smoke.yaml --task __NAME__ tasks.__NAME__.settings.data_file=my_items.csv --output-dir runs/mine
shopmtl train tasks.__NAME__={}     # the full default run plus this task: pretrained encoder, minutes to hours
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
"""
