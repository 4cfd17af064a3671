"""``shopmtl report RUN_DIR``: an HTML page of plots and tables for one finished run.

Writes ``RUN_DIR/report/index.html`` with PNG plots beside it:

* an overview: each task's primary test metric beside its best baseline, the selection
  score over training and, when the run recorded them (``history[i]["train_loss"]``),
  the training losses;
* per task: its test metrics beside its baselines, its validation metrics over the
  training steps (from ``metrics.json``'s ``history``), and plots of the best model's
  predictions on the test split, chosen by the task's **kind** (:data:`KIND_PLOTS`):

  - regression: predicted against actual; with a datetime key (e.g. ``week``) and an
    entity key (e.g. ``stock_code``) also actual and predicted over time for six entities;
  - multiclass: the confusion matrix;
  - binary: the ROC curve;
  - multilabel: F1 per label.

Nothing here names a task: a plugin's task of the same kind gets the same plots, and a
plugin may add its own plotters to :data:`KIND_PLOTS`. The prediction plots rebuild the
task's data with the run's config and feature states (the rows the run was evaluated on);
``predictions=False`` (``--no-predictions``) skips them and needs neither the model nor
the data, only ``metrics.json``.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopmtl.core import plots
from shopmtl.registry.contract import TaskSpec

log = logging.getLogger(__name__)

REPORT_DIR = "report"
INDEX = "index.html"
#: Entities drawn in the trend view of a regression task with a time key.
TREND_SERIES = 6


class ReportError(ValueError):
    """The run folder cannot be reported on (no ``metrics.json``: the run did not finish)."""


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
        from shopmtl.registry.blocks import default_decode

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
    plots.predicted_vs_actual(f"{task.name}: predicted vs actual ({task.split})", actual, predicted, quantity, folder / file)
    return [Plot(f"Predicted against actual {quantity} on the {task.split} rows; "
                 "points on the dashed line are exact.", file)]


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
    keys = pd.MultiIndex.from_frame(frame[entity]) if len(entity) > 1 else pd.Index(frame[entity[0]])
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
        series.append((title, part[time].to_numpy(), part["_actual"].to_numpy(), part["_predicted"].to_numpy()))
    file = f"{task.name}_trend.png"
    plots.trends(f"{task.name}: actual vs predicted {quantity} per {time} ({task.split})", series, quantity, time, folder / file)
    return [Plot(f"Actual and predicted {quantity} per {time} over the {task.split} period for {len(series)} "
                 f"{' / '.join(entity)} values with a row in every {time}, spread over the busier half by "
                 f"total actual {quantity} (all of the split's rows, not only the evaluated sample).", file)]


def _square_matrix(metrics: Mapping[str, Any], size: int) -> np.ndarray | None:
    """A ``size x size`` matrix among the metrics (a confusion matrix), preferring one named so."""
    names = sorted(metrics, key=lambda n: "confusion" not in n)
    for name in names:
        value = metrics[name]
        if isinstance(value, list) and len(value) == size and all(isinstance(r, list) and len(r) == size for r in value):
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
        matrix = confusion_matrix(y[present].astype(int), task.predictions[present].argmax(axis=1), labels=list(range(size)))
        source = "computed from the model's most probable class"
    file = f"{task.name}_confusion.png"
    plots.confusion(f"{task.name}: confusion matrix ({task.split})", matrix, classes, folder / file)
    return [Plot(f"Confusion matrix on the {task.split} rows ({source}); rows are the true class, "
                 "colour is the share of each true class.", file)]


def binary_roc(task: TaskPredictions, folder: Path) -> list[Plot]:
    from sklearn.metrics import roc_auc_score, roc_curve

    y, p = task.labels[:, 0], task.predictions[:, 0]
    present = ~np.isnan(y)
    y, p = y[present].astype(int), p[present]
    if len(np.unique(y)) < 2:
        return [Plot(f"No ROC curve: the {task.split} rows hold only one class.")]
    fpr, tpr, _ = roc_curve(y, p)
    file = f"{task.name}_roc.png"
    plots.roc(f"{task.name}: ROC curve ({task.split})", fpr, tpr, float(roc_auc_score(y, p)),
              int(y.sum()), int(len(y) - y.sum()), folder / file)
    return [Plot(f"ROC curve of the predicted probability on the {task.split} rows.", file)]


def multilabel_f1(task: TaskPredictions, folder: Path) -> list[Plot]:
    from sklearn.metrics import f1_score

    labels = list(task.spec.labels)
    f1, positives, rows = [], [], []
    for k in range(len(labels)):
        present = ~np.isnan(task.labels[:, k])
        truth = task.labels[present, k].astype(int)
        chosen = (task.predictions[present, k] >= 0.5).astype(int)
        f1.append(float(f1_score(truth, chosen, average=None, labels=[1], zero_division=0)[0]) if len(truth) else float("nan"))
        positives.append(int(truth.sum()))
        rows.append(len(truth))
    file = f"{task.name}_label_f1.png"
    plots.label_f1(f"{task.name}: F1 per label ({task.split})", labels, np.array(f1), np.array(positives),
                   np.array(rows), folder / file)
    return [Plot(f"F1 of each label on the {task.split} rows, a label predicted when its probability is at "
                 "least 0.5; beside each bar its positive rows out of the rows with that label known.", file)]


#: Plotters per task kind, in the order their plots appear. A plugin may append its own.
KIND_PLOTS: dict[str, list[Plotter]] = {
    "regression": [regression_scatter, regression_trend],
    "multiclass": [multiclass_confusion],
    "binary": [binary_roc],
    "multilabel": [multilabel_f1],
}


# ----------------------------------------------------------------- run-level plots


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def scalar_metric_names(spec: TaskSpec | None, samples: Sequence[Mapping[str, Any]]) -> list[str]:
    """The task's comparable metrics: its declared non-``info`` ones, else every number seen."""
    if spec is not None:
        return [m for m, d in spec.metric_directions.items() if d != "info"]
    names: list[str] = []
    for sample in samples:
        names += [m for m, v in sample.items() if _number(v) is not None and m not in names]
    return names


def validation_curves(name: str, spec: TaskSpec | None, history: Sequence[Mapping[str, Any]], best_step: int | None,
                      folder: Path) -> list[Plot]:
    points = [(entry["step"], entry["val"][name]) for entry in history if name in entry.get("val", {})]
    if not points:
        return [Plot("No validation history for this task in metrics.json.")]
    curves = {}
    for metric in scalar_metric_names(spec, [m for _, m in points]):
        xy = [(step, _number(m.get(metric))) for step, m in points]
        xy = [(s, v) for s, v in xy if v is not None]
        if xy:
            curves[metric] = ([s for s, _ in xy], [v for _, v in xy])
    if not curves:
        return [Plot("No numeric validation metrics in the history.")]
    directions = dict(spec.metric_directions) if spec is not None else {}
    file = f"{name}_val_curves.png"
    plots.metric_curves(f"{name}: validation metrics over training", curves, directions, best_step, folder / file)
    return [Plot(f"Validation metrics at each evaluation ({len(points)}); the dashed line marks the step of the "
                 "best model, which every other number and plot in this report uses.", file)]


def training_plots(history: Sequence[Mapping[str, Any]], best_step: int | None, folder: Path) -> list[Plot]:
    """The selection score over training and, when recorded, each task's training loss."""
    items = []
    score = [(e["step"], _number(e.get("score"))) for e in history]
    score = [(s, v) for s, v in score if v is not None]
    if score:
        file = "selection_score.png"
        plots.line_curves("Selection score on validation", {"score": ([s for s, _ in score], [v for _, v in score])},
                          "score (higher is better)", folder / file, best_step)
        items.append(Plot("The aggregate early stopping and model selection watch: the mean over tasks of each "
                          "task's selection metric on validation (metrics where lower is better enter negated).", file))
    losses: dict[str, tuple[list[float], list[float]]] = {}
    for entry in history:
        for task, value in (entry.get("train_loss") or {}).items():
            value = _number(value)
            if value is not None:
                steps, values = losses.setdefault(task, ([], []))
                steps.append(entry["step"])
                values.append(value)
    if losses:
        file = "train_loss.png"
        plots.line_curves("Training loss per task", losses, "mean loss since the previous evaluation", folder / file)
        items.append(Plot("Each task's own (unweighted) training loss, averaged over its batches between "
                          "evaluations. Losses of different kinds are on different scales.", file))
    else:
        items.append(Plot("Training losses were not recorded in metrics.json (no train_loss in its history)."))
    return items


# ----------------------------------------------------------------- predictions


def task_predictions(run_dir: Path, registered: Mapping[str, TaskSpec], split: str,
                     metrics: Mapping[str, Any]) -> tuple[dict[str, TaskPredictions], str | None]:
    """The best model's predictions on ``split`` per task, or why there are none."""
    from shopmtl.core.config import TaskConfig
    from shopmtl.core.evaluate import Scorer
    from shopmtl.core.features import encode_rows
    from shopmtl.core.predict import RunError, load_run
    from shopmtl.core.prepare import PreparedTask, build_task_data, subsample

    try:
        run = load_run(run_dir, dict(registered))
    except (RunError, FileNotFoundError) as error:
        return {}, f"No prediction plots: {error}"
    scorer = Scorer(run.accelerator, run.model, run.bank, run.config.training.eval_batch_size)
    out = {}
    for name, spec in run.specs.items():
        task_config = run.config.tasks.get(name, TaskConfig())
        full = build_task_data(spec, run.config)
        data = subsample(full, task_config, run.config.seed)  # the rows the run evaluated on
        frame = data[split]
        state = run.features[name]
        prepared = PreparedTask(spec=spec, config=task_config, data=data, state=state, rows={})
        rows = encode_rows(spec, frame, state, run.bank)

        def predict(extra: pd.DataFrame, prepared: PreparedTask = prepared) -> np.ndarray:
            return scorer.predict_rows(prepared, encode_rows(prepared.spec, extra, prepared.state, run.bank))

        out[name] = TaskPredictions(
            name=name, spec=spec, split=split, frame=frame, labels=rows.labels,
            predictions=scorer.predict_rows(prepared, rows),
            metrics=metrics.get(name, {}).get(split, {}),
            full_frame=full[split], predict=predict, calibration=run.calibration.get(name, {}),
        )
    return out, None


def kind_plots(task: TaskPredictions, folder: Path) -> list[Plot]:
    """Every plotter of the task's kind; a failing one becomes a visible note, not a failed report."""
    items: list[Plot] = []
    for plotter in KIND_PLOTS.get(task.spec.kind, []):
        try:
            items += plotter(task, folder)
        except Exception as error:  # noqa: BLE001 -- one odd task must not cost the whole report
            log.warning("report: %s for task %s failed: %s", plotter.__name__, task.name, error, exc_info=True)
            items.append(Plot(f"{plotter.__name__} failed: {type(error).__name__}: {error}", error=True))
    return items


# ----------------------------------------------------------------- HTML


def _cell(value: Any) -> str:
    number = _number(value)
    if number is not None:
        return f"{number:.4f}"
    return "–" if value is None else html.escape(str(value))


def _best(values: Sequence[float | None], direction: str | None) -> float | None:
    present = [v for v in values if v is not None]
    if not present or direction not in ("max", "min"):
        return None
    return max(present) if direction == "max" else min(present)


def metrics_table_html(name: str, spec: TaskSpec | None, model: Mapping[str, Any],
                       baselines: Mapping[str, Mapping[str, Any]], split: str) -> str:
    """The task's metrics on ``split``: the model's row, then each baseline's; best per column in bold."""
    columns = scalar_metric_names(spec, [model, *baselines.values()])
    directions = dict(spec.metric_directions) if spec is not None else {}
    rows = [(f"shopmtl model ({split})", model, "model")]
    rows += [(f"baseline: {b}", values, "baseline") for b, values in baselines.items()]
    best = {c: _best([_number(values.get(c)) for _, values, _ in rows], directions.get(c)) for c in columns}
    arrow = {"max": " ↑", "min": " ↓"}
    head = "".join(f"<th>{html.escape(c)}{arrow.get(directions.get(c, ''), '')}</th>" for c in columns)
    body = []
    for label, values, kind in rows:
        cells = []
        for c in columns:
            number = _number(values.get(c))
            bold = number is not None and best[c] is not None and number == best[c]
            cells.append(f"<td class=\"num{' best' if bold else ''}\">{_cell(values.get(c))}</td>")
        body.append(f"<tr class=\"{kind}\"><th scope=\"row\">{html.escape(label)}</th>{''.join(cells)}</tr>")
    return (f"<table class=\"metrics\" data-task=\"{html.escape(name)}\"><thead><tr><th>model</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def overview_table_html(names: Sequence[str], specs: Mapping[str, TaskSpec], by_task: Mapping[str, Any],
                        baselines: Mapping[str, Any], split: str) -> str:
    """One row per task: its primary metric for the model and for its best baseline."""
    body = []
    for name in names:
        spec = specs.get(name)
        model = by_task.get(name, {}).get(split, {})
        metric = spec.primary_metric if spec is not None else next(iter(scalar_metric_names(None, [model])), None)
        direction = spec.metric_directions.get(metric) if spec is not None else None
        value = _number(model.get(metric)) if metric else None
        candidates = [(b, _number(v.get(metric))) for b, v in baselines.get(name, {}).items()] if metric else []
        candidates = [(b, v) for b, v in candidates if v is not None]
        best_name, best_value, verdict = "–", None, ""
        if candidates and direction in ("max", "min"):
            best_name, best_value = (max if direction == "max" else min)(candidates, key=lambda bv: bv[1])
            if value is not None:
                ahead = value > best_value if direction == "max" else value < best_value
                verdict = "<span class=\"ahead\">model ahead</span>" if ahead else "<span class=\"behind\">baseline ahead</span>"
        arrow = {"max": " ↑", "min": " ↓"}.get(direction or "", "")
        body.append(
            f"<tr><th scope=\"row\"><a href=\"#task-{html.escape(name)}\">{html.escape(name)}</a></th>"
            f"<td>{html.escape(spec.kind) if spec else '?'}</td><td>{html.escape(str(metric))}{arrow}</td>"
            f"<td class=\"num\">{_cell(value)}</td><td>{html.escape(best_name)}</td>"
            f"<td class=\"num\">{_cell(best_value)}</td><td>{verdict}</td></tr>"
        )
    return ("<table class=\"overview\"><thead><tr><th>task</th><th>kind</th><th>primary metric</th><th>model</th>"
            "<th>best baseline</th><th>its value</th><th></th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _items_html(items: Sequence[Plot]) -> str:
    parts = []
    for item in items:
        caption = html.escape(item.caption)
        if item.file:
            parts.append(f"<figure><img src=\"{html.escape(item.file)}\" alt=\"{caption}\" loading=\"lazy\">"
                         f"<figcaption>{caption}</figcaption></figure>")
        else:
            parts.append(f"<p class=\"{'report-error' if item.error else 'note'}\">{caption}</p>")
    return "\n".join(parts)


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; }
h2 small { color: #777; font-weight: normal; font-size: .7em; }
.meta { color: #666; font-size: .9rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid #e3e3e3; text-align: left; }
thead th { border-bottom: 2px solid #bbb; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; }
tr.model th, tr.model td { background: #eef4fb; }
.ahead { color: #1a7f37; } .behind { color: #b35900; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .85rem; max-width: 60rem; }
p.note { color: #666; font-style: italic; } p.report-error { color: #b00020; }
nav a { margin-right: .8rem; }
"""


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    index: Path
    images: list[Path]
    notes: list[str]


def build_report(run_dir: str | Path, registered: Mapping[str, TaskSpec], *, split: str = "test",
                 predictions: bool = True) -> Report:
    """Write ``RUN_DIR/report/index.html`` and its PNG plots; see the module docstring."""
    from shopmtl.core import checkpoint

    run_dir = Path(run_dir)
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file():
        raise ReportError(f"{run_dir} has no metrics.json: report on a finished run (`shopmtl train` writes it at the end)")
    record = checkpoint.read_json(metrics_file)
    by_task: dict[str, Any] = record.get("tasks", {})
    baselines: dict[str, Any] = record.get("baselines", {}).get(split, {})
    history: list[dict[str, Any]] = record.get("history", [])
    best_step = record.get("best_step")
    names = list(by_task) or sorted({t for e in history for t in e.get("val", {})})
    specs = {n: registered[n] for n in names if n in registered}

    folder = run_dir / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("*.png"), folder / INDEX]:  # an earlier report's plots must not linger
        stale.unlink(missing_ok=True)

    notes = []
    unknown = [n for n in names if n not in registered]
    if unknown:
        notes.append(f"No installed plugin provides {', '.join(unknown)}: their metrics are shown without "
                     "directions, and the run's model cannot be loaded for prediction plots.")
    predicted: dict[str, TaskPredictions] = {}
    if predictions and not unknown:
        predicted, why = task_predictions(run_dir, registered, split, by_task)
        if why:
            notes.append(why)
    elif not predictions:
        notes.append("Prediction plots skipped (--no-predictions).")

    config_text = ""
    if (run_dir / "config.yaml").is_file():
        import yaml

        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        encoder = config.get("encoder", {})
        config_text = (f"run <b>{html.escape(str(config.get('run_name', run_dir.name)))}</b> · encoder "
                       f"{html.escape(str(encoder.get('name')))}" + (" (random init)" if encoder.get("random_init") else "")
                       + f" · seed {html.escape(str(config.get('seed')))} · ")
    owners = {}
    if (run_dir / "plugins.json").is_file():
        owners = checkpoint.read_json(run_dir / "plugins.json").get("tasks", {})

    sections = []
    overview = [
        f"<h2 id=\"overview\">Overview <small>{html.escape(split)} split</small></h2>",
        overview_table_html(names, specs, by_task, baselines, split),
        _items_html([Plot(n) for n in notes]),
        _items_html(training_plots(history, best_step, folder)),
    ]
    sections.append("\n".join(overview))
    for name in names:
        spec = specs.get(name)
        kind = spec.kind if spec else "unknown kind"
        owner = f", plugin {owners[name]}" if owners.get(name) else ""
        parts = [f"<section id=\"task-{html.escape(name)}\"><h2>{html.escape(name)} <small>{html.escape(kind)}{html.escape(owner)}</small></h2>"]
        if spec is not None:
            parts.append(f"<p>{html.escape(spec.description)}</p>")
        parts.append(f"<h3>Metrics ({html.escape(split)})</h3>")
        model = by_task.get(name, {}).get(split)
        if model is None:
            parts.append(_items_html([Plot(f"No {split} metrics for this task in metrics.json.")]))
        else:
            parts.append(metrics_table_html(name, spec, model, baselines.get(name, {}), split))
            if not baselines.get(name):
                parts.append(_items_html([Plot(f"No baselines on {split}" + (" (only test has them)." if split != "test" else "."))]))
        parts.append("<h3>Training</h3>")
        parts.append(_items_html(validation_curves(name, spec, history, best_step, folder)))
        if name in predicted:
            parts.append(f"<h3>Predictions of the best model ({html.escape(split)})</h3>")
            items = kind_plots(predicted[name], folder)
            parts.append(_items_html(items or [Plot(f"No plots for tasks of kind {kind}.")]))
        parts.append("</section>")
        sections.append("\n".join(parts))

    nav = "".join(f"<a href=\"#task-{html.escape(n)}\">{html.escape(n)}</a>" for n in names)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>shopmtl report: {html.escape(run_dir.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>shopmtl report</h1>
<p class="meta">{config_text}best model at step {html.escape(str(best_step))} of {html.escape(str(record.get('steps')))}
 · {html.escape(str(run_dir.resolve()))} · generated {generated}</p>
<nav><a href="#overview">overview</a>{nav}</nav>
{''.join(sections)}
</body></html>
"""
    index = folder / INDEX
    index.write_text(page, encoding="utf-8")
    return Report(index=index, images=sorted(folder.glob("*.png")), notes=notes)
