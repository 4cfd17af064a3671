"""The report's figures: a run's training curves and, per task kind, plots of its predictions.

Nothing here names a task: a plugin's task of the same kind gets the same plots, and a
plugin may add its own plotters to :data:`KIND_PLOTS`. :mod:`shopmtl.core.report.html`
lays the figures out in the page; :mod:`shopmtl.core.report.plots` draws them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from shopmtl.core.report import plots
from shopmtl.registry.spec import TaskSpec

log = logging.getLogger(__name__)

#: Entities drawn in the trend view of a regression task with a time key.
TREND_SERIES = 6


@dataclass(frozen=True)
class Plot:
    """One item of a task's section: a PNG (``file`` beside index.html) or, without one, a note."""

    caption: str
    file: str | None = None
    error: bool = False


@dataclass
class TaskPredictions:
    """What a kind's plotters get: the best model's predictions on one split of one task.

    Attributes:
        name, spec: the task.
        split: ``"test"`` or ``"val"``.
        frame: the split's rows the run was evaluated on (after ``max_eval_examples``).
        labels: ``(n, n_label_columns)`` labels, ``NaN`` where missing.
        predictions: ``(n, n_outputs)`` activated outputs (values or probabilities).
        metrics: the split's metrics from ``metrics.json`` (``{}`` if absent).
        full_frame: every row of the split, before ``max_eval_examples`` subsampling.
        predict: activated predictions for any rows with the task's columns.
        calibration: what the task's ``calibrate`` fitted, ``{}`` if none.
    """

    name: str
    spec: TaskSpec
    split: str
    frame: pd.DataFrame
    labels: np.ndarray
    predictions: np.ndarray
    metrics: Mapping[str, Any]
    full_frame: pd.DataFrame
    predict: Callable[[pd.DataFrame], np.ndarray]
    calibration: Mapping[str, Any] = field(default_factory=dict)

    def decode(self, predictions: np.ndarray) -> pd.DataFrame:
        """The task's readable columns for ``predictions`` (its ``decode``, or the kind's)."""
        from shopmtl.core.model.outputs import default_decode

        if self.spec.decode is None:
            return default_decode(self.spec)(predictions)
        if self.spec.calibrate is not None:
            return self.spec.decode(predictions, self.calibration)
        return self.spec.decode(predictions)


#: A plotter draws into the report folder and returns its items (none when it does not apply).
Plotter = Callable[[TaskPredictions, Path], list[Plot]]


# ----------------------------------------------------------------- kind plotters


def readable(task: TaskPredictions, values: np.ndarray) -> tuple[np.ndarray, str]:
    """Regression values in the unit a person reads, and that unit's name.

    The task's ``decode`` maps model-scale values to readable columns (``sales``: log1p
    units to ``units``); labels live on the model's scale, so the same decode maps them
    too. The first numeric decoded column other than ``prediction`` is the readable one;
    a task without one (the default decode) is shown on the model's scale, named by its
    label column.
    """
    values = np.asarray(values, dtype=float).reshape(len(values), -1)
    try:
        decoded = task.decode(values)
        numeric = [c for c in decoded.columns if pd.api.types.is_numeric_dtype(decoded[c])]
        chosen = [c for c in numeric if c != "prediction"] or numeric
        if chosen and len(decoded) == len(values):
            column = chosen[0]
            name = task.spec.labels[0] if column == "prediction" else column
            out = decoded[column].to_numpy(dtype=float)
            return np.where(np.isnan(values[:, 0]), np.nan, out), name
    except Exception as error:  # noqa: BLE001 -- a decode that rejects labels: show the model's scale
        log.debug("decode of %s failed on labels (%s); plotting raw values", task.name, error)
    return values[:, 0], task.spec.labels[0]


def regression_scatter(task: TaskPredictions, folder: Path) -> list[Plot]:
    actual, quantity = readable(task, task.labels[:, :1])
    predicted, _ = readable(task, task.predictions[:, :1])
    file = f"{task.name}_predicted_vs_actual.png"
    plots.predicted_vs_actual(
        f"{task.name}: predicted vs actual ({task.split})",
        actual,
        predicted,
        quantity,
        folder / file,
    )
    return [
        Plot(
            f"Predicted against actual {quantity} on the {task.split} rows; "
            "points on the dashed line are exact.",
            file,
        )
    ]


def time_key(spec: TaskSpec, frame: pd.DataFrame) -> str | None:
    """The first of the task's key columns holding datetimes, if any."""
    for key in spec.keys:
        if key in frame.columns and pd.api.types.is_datetime64_any_dtype(frame[key]):
            return key
    return None


def pick_series(totals: pd.Series, n: int = TREND_SERIES) -> list[Any]:
    """``n`` entities spread over the busier half by ``totals`` (largest first), deterministically."""
    order = totals[totals > 0].sort_values(ascending=False, kind="stable")
    if len(order) == 0:
        order = totals.sort_values(ascending=False, kind="stable")
    if len(order) <= n:
        return list(order.index)
    positions = np.unique(np.linspace(0, (len(order) - 1) / 2, n).round().astype(int))
    return [order.index[p] for p in positions]


def regression_trend(task: TaskPredictions, folder: Path) -> list[Plot]:
    """Actual and predicted values over time for a few entities (needs a datetime key and an entity key)."""
    frame = task.full_frame
    time = time_key(task.spec, frame)
    entity = [k for k in task.spec.keys if k != time and k in frame.columns]
    if time is None or not entity:
        return []
    label = task.spec.labels[0]
    frame = frame[frame[label].notna()]
    if frame.empty:
        return []
    actual, quantity = readable(task, frame[[label]].to_numpy(dtype=float))
    frame = frame.assign(_actual=actual)
    groups = frame.groupby(entity, sort=True)
    sizes = groups.size()
    complete = sizes[sizes == sizes.max()].index  # entities with a row in every period of the split
    totals = groups["_actual"].sum().loc[complete]
    chosen = pick_series(totals)
    keys = (
        pd.MultiIndex.from_frame(frame[entity]) if len(entity) > 1 else pd.Index(frame[entity[0]])
    )
    rows = frame[keys.isin(chosen)].sort_values([*entity, time], kind="stable")
    predicted, _ = readable(task, task.predict(rows.drop(columns="_actual")))
    rows = rows.assign(_predicted=predicted)
    series = []
    for key in chosen:
        key_tuple = key if isinstance(key, tuple) else (key,)
        part = rows
        for column, value in zip(entity, key_tuple):
            part = part[part[column] == value]
        text = str(part[task.spec.text].iloc[0]) if task.spec.text in part.columns else ""
        title = " · ".join(map(str, key_tuple)) + (f" · {text}" if text else "")
        series.append(
            (
                title,
                part[time].to_numpy(),
                part["_actual"].to_numpy(),
                part["_predicted"].to_numpy(),
            )
        )
    file = f"{task.name}_trend.png"
    plots.trends(
        f"{task.name}: actual vs predicted {quantity} per {time} ({task.split})",
        series,
        quantity,
        time,
        folder / file,
    )
    return [
        Plot(
            f"Actual and predicted {quantity} per {time} over the {task.split} period for {len(series)} "
            f"{' / '.join(entity)} values with a row in every {time}, spread over the busier half by "
            f"total actual {quantity} (all of the split's rows, not only the evaluated sample).",
            file,
        )
    ]


def _square_matrix(metrics: Mapping[str, Any], size: int) -> np.ndarray | None:
    """A ``size x size`` matrix among the metrics (a confusion matrix), preferring one named so."""
    names = sorted(metrics, key=lambda n: "confusion" not in n)
    for name in names:
        value = metrics[name]
        if (
            isinstance(value, list)
            and len(value) == size
            and all(isinstance(r, list) and len(r) == size for r in value)
        ):
            return np.asarray(value, dtype=float)
    return None


def multiclass_confusion(task: TaskPredictions, folder: Path) -> list[Plot]:
    size = task.spec.n_predictions
    classes = list(task.spec.classes) or [str(i) for i in range(size)]
    matrix = _square_matrix(task.metrics, size)
    source = "as recorded in metrics.json"
    if matrix is None:
        from sklearn.metrics import confusion_matrix

        y = task.labels[:, 0]
        present = ~np.isnan(y)
        matrix = confusion_matrix(
            y[present].astype(int),
            task.predictions[present].argmax(axis=1),
            labels=list(range(size)),
        )
        source = "computed from the model's most probable class"
    file = f"{task.name}_confusion.png"
    plots.confusion(f"{task.name}: confusion matrix ({task.split})", matrix, classes, folder / file)
    return [
        Plot(
            f"Confusion matrix on the {task.split} rows ({source}); rows are the true class, "
            "colour is the share of each true class.",
            file,
        )
    ]


def binary_roc(task: TaskPredictions, folder: Path) -> list[Plot]:
    from sklearn.metrics import roc_auc_score, roc_curve

    y, p = task.labels[:, 0], task.predictions[:, 0]
    present = ~np.isnan(y)
    y, p = y[present].astype(int), p[present]
    if len(np.unique(y)) < 2:
        return [Plot(f"No ROC curve: the {task.split} rows hold only one class.")]
    fpr, tpr, _ = roc_curve(y, p)
    file = f"{task.name}_roc.png"
    plots.roc(
        f"{task.name}: ROC curve ({task.split})",
        fpr,
        tpr,
        float(roc_auc_score(y, p)),
        int(y.sum()),
        int(len(y) - y.sum()),
        folder / file,
    )
    return [Plot(f"ROC curve of the predicted probability on the {task.split} rows.", file)]


def multilabel_f1(task: TaskPredictions, folder: Path) -> list[Plot]:
    from sklearn.metrics import f1_score

    labels = list(task.spec.labels)
    f1, positives, rows = [], [], []
    for k in range(len(labels)):
        present = ~np.isnan(task.labels[:, k])
        truth = task.labels[present, k].astype(int)
        chosen = (task.predictions[present, k] >= 0.5).astype(int)
        f1.append(
            float(f1_score(truth, chosen, average=None, labels=[1], zero_division=0)[0])
            if len(truth)
            else float("nan")
        )
        positives.append(int(truth.sum()))
        rows.append(len(truth))
    file = f"{task.name}_label_f1.png"
    plots.label_f1(
        f"{task.name}: F1 per label ({task.split})",
        labels,
        np.array(f1),
        np.array(positives),
        np.array(rows),
        folder / file,
    )
    return [
        Plot(
            f"F1 of each label on the {task.split} rows, a label predicted when its probability is at "
            "least 0.5; beside each bar its positive rows out of the rows with that label known.",
            file,
        )
    ]


#: Plotters per task kind, in the order their plots appear. A plugin may append its own.
KIND_PLOTS: dict[str, list[Plotter]] = {
    "regression": [regression_scatter, regression_trend],
    "multiclass": [multiclass_confusion],
    "binary": [binary_roc],
    "multilabel": [multilabel_f1],
}


# ----------------------------------------------------------------- run-level plots


def kind_plots(task: TaskPredictions, folder: Path) -> list[Plot]:
    """Every plotter of the task's kind; a failing one becomes a visible note, not a failed report."""
    items: list[Plot] = []
    for plotter in KIND_PLOTS.get(task.spec.kind, []):
        try:
            items += plotter(task, folder)
        except Exception as error:  # noqa: BLE001 -- one odd task must not cost the whole report
            log.warning(
                "report: %s for task %s failed: %s",
                plotter.__name__,
                task.name,
                error,
                exc_info=True,
            )
            items.append(
                Plot(f"{plotter.__name__} failed: {type(error).__name__}: {error}", error=True)
            )
    return items
