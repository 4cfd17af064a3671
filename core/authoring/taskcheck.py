"""Check a task end to end, the way a run would use it, and say what is wrong in words.

:func:`check_task` is what ``shopmtl plugins check`` and the plugin test kit
(:mod:`shopmtl.testing`) run: the registration checks of
:func:`~shopmtl.registry.validation.validate_task`, then the dataset built through a
:class:`~shopmtl.BuildContext` (splits, columns, derived features, label values for the
task's kind, feature types), then one dry run of ``metrics`` and ``baselines`` on it.

Importing this module is light (no torch).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from shopmtl.core.data.checks import check_splits
from shopmtl.core.data.decodecheck import check_decode
from shopmtl.registry.derived import with_derived
from shopmtl.registry.messages import short as _short
from shopmtl.registry.spec import BuildContext, EvalBatch, TaskData, TaskSpec
from shopmtl.registry.splits import split_batches, split_frame
from shopmtl.registry.validation import validate_task

__all__ = ["assert_valid_task", "check_task", "check_task_data"]

#: Rows of train and of val a prior is checked on (``plugins check``): enough to fit, seconds on any data.
PRIOR_CHECK_ROWS = 5000


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

    First shopmtl's registration checks (:func:`~shopmtl.registry.validation.validate_task`:
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
        raise AssertionError(
            f"task {name!r} has {len(problems)} problem{'s' if len(problems) != 1 else ''}:\n  - "
            + "\n  - ".join(problems)
        )


def check_task_data(spec: TaskSpec, context: BuildContext) -> list[str]:
    """Build ``spec``'s dataset with ``context`` and check it (see :func:`check_task`).

    The data is checked by :func:`~shopmtl.core.data.checks.check_splits`, the function a
    training run calls before its first step: every row of every split, read a chunk at a
    time, so this says ok exactly when ``train`` accepts the data.
    """
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
        return [
            f"TaskData.splits is {_short(data.splits)}: make it a dict of split name -> pandas DataFrame "
            "(or Arrow table, or Parquet path)"
        ]
    problems = check_splits(spec, data.splits).problems
    if problems:
        return problems
    frames = {s: with_derived(spec, split_frame(data.splits[s])) for s in ("val", "test")}
    data = dataclasses.replace(data, splits={**data.splits, **frames})
    problems += check_decode(spec, frames["val"])  # as train does, before its first step
    problems += _check_metrics_run(spec, data, "val")
    if spec.baselines is not None and not problems:
        problems += _check_baselines(spec, data, "val")
    if spec.priors and not problems:
        train = _first_rows(spec, data.splits["train"], PRIOR_CHECK_ROWS)
        for name in spec.priors:
            problems += _check_prior(spec, name, train, frames["val"])
    return problems


def _first_rows(spec: TaskSpec, source: Any, rows: int) -> Any:
    """The first ``rows`` rows of a split (derived features computed), read without the rest."""
    frame = next(split_batches(source, rows), None)
    return with_derived(spec, frame) if frame is not None else None


def _check_prior(spec: TaskSpec, name: str, train: Any, val: Any) -> list[str]:
    """Fit prior ``name`` on train (two folds, as a run does with five), predict val, and save
    and reopen the fit through ``Prior.state``/``Prior.from_state``, as a run does (no pickle).

    Up to :data:`PRIOR_CHECK_ROWS` rows of each: the check is of the code, not of the prior's quality.
    """
    import tempfile
    from pathlib import Path

    import numpy as np
    from shopmtl.core.data.priorfile import load_prior, save_prior
    from shopmtl.core.data.priors import FittedPrior, PriorError, fit_prior, prior_outputs

    val = val.iloc[:PRIOR_CHECK_ROWS]
    try:
        fitted, _ = fit_prior(spec, name, train, val, folds=2, seed=0)  # through state/from_state
        as_fitted = prior_outputs(spec, fitted, val)
        direct = spec.priors[name].fit(train, val)  # the model itself, as its fit returns it
        unsaved = prior_outputs(spec, FittedPrior(name, direct), val)
        with tempfile.TemporaryDirectory() as folder:
            save_prior(Path(folder), spec.name, fitted)
            reopened = prior_outputs(spec, load_prior(Path(folder), spec.name, spec, name), val)
    except PriorError as exc:
        return [f"{exc} (run with tasks.{spec.name}.prior: {name})"]
    lost = float(np.abs(unsaved - as_fitted).max(initial=0.0))
    if lost > PRIOR_ROUND_TRIP_TOLERANCE:
        return [
            f"prior {name!r}: rebuilt from its Prior.state, it predicts up to {lost:.2e} away from "
            f"the model its fit returned (allowed {PRIOR_ROUND_TRIP_TOLERANCE:g}): the state loses part "
            "of the model, or the fit is not deterministic (seed it)"
        ]
    worst = float(np.abs(as_fitted - reopened).max(initial=0.0))
    if worst > PRIOR_ROUND_TRIP_TOLERANCE:
        return [
            f"prior {name!r}: saved and reopened, it predicts up to {worst:.2e} away from the fitted "
            f"prior (allowed {PRIOR_ROUND_TRIP_TOLERANCE:g}): Prior.from_state must rebuild exactly "
            "what Prior.state describes"
        ]
    return []


#: How far a prior reopened from its file may predict from the one fitted (float32 outputs).
PRIOR_ROUND_TRIP_TOLERANCE = 1e-6


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
        split=split,
        frame=frame,
        predictions=predictions,
        labels=labels,
        score=predict,
        extras=data.extras,
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
        return [
            f"baselines raised {_exc(exc)} on the {split} split: it is called with (TaskData, split)"
        ]
    if not isinstance(result, Mapping) or not all(isinstance(v, Mapping) for v in result.values()):
        return [
            f"baselines returned {_short(result)}: return {{baseline name: {{metric name: value}}}}"
        ]
    return []


def _settings(spec: TaskSpec, settings: Any) -> Any:
    """The builder's settings: an instance as given, a mapping validated as a config's, else the defaults."""
    if isinstance(settings, Mapping):
        from shopmtl.core.data.task_config import task_settings

        return task_settings(spec, settings)  # unknown keys and bad values fail as in a config
    if settings is None and spec.settings is not None:
        return spec.settings()
    return settings


def _is_number(value: Any) -> bool:
    import numpy as np

    if value is None:
        return True  # to_plain turns NaN into None
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    return (
        isinstance(value, np.ndarray)
        and value.shape == ()
        and np.issubdtype(value.dtype, np.number)
    )


def _exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
