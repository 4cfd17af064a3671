"""``shopmtl report RUN_DIR``: an HTML page of plots and tables for one finished run.

Writes ``RUN_DIR/report/index.html`` with PNG plots beside it:

* an overview: each task's primary test metric beside its best baseline, the selection
  score over training and, when the run recorded them (``history[i]["train_loss"]``),
  the training losses;
* per task: its test metrics beside its baselines, its validation metrics over the
  training steps (from ``metrics.json``'s ``history``), and plots of the best model's
  predictions on the test split, chosen by the task's **kind**
  (:data:`~shopmtl.core.report_figures.KIND_PLOTS`):

  - regression: predicted against actual; with a datetime key (e.g. ``week``) and an
    entity key (e.g. ``stock_code``) also actual and predicted over time for six entities;
  - multiclass: the confusion matrix;
  - binary: the ROC curve;
  - multilabel: F1 per label.

Nothing here names a task: a plugin's task of the same kind gets the same plots, and a
plugin may add its own plotters to ``KIND_PLOTS`` (:mod:`shopmtl.core.report.figures`). The
prediction plots rebuild the task's data with the run's config and feature states (the rows the run was evaluated on);
``predictions=False`` (``--no-predictions``) skips them and needs neither the model nor
the data, only ``metrics.json``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from shopmtl.core.files import write_text_atomic
from shopmtl.core.report.curves import training_plots, validation_curves
from shopmtl.core.report.figures import (
    Plot,
    TaskPredictions,
    kind_plots,
)
from shopmtl.core.report.tables_html import metrics_table_html, overview_table_html
from shopmtl.registry.spec import TaskSpec

log = logging.getLogger(__name__)

REPORT_DIR = "report"
INDEX = "index.html"


class ReportError(ValueError):
    """The run folder cannot be reported on (no ``metrics.json``: the run did not finish)."""


# ----------------------------------------------------------------- predictions


def task_predictions(
    run_dir: Path,
    registered: Mapping[str, TaskSpec],
    split: str,
    metrics: Mapping[str, Any],
    allow_pickle: bool = False,
) -> tuple[dict[str, TaskPredictions], str | None]:
    """The best model's predictions on ``split`` per task, or why there are none
    (``allow_pickle``: see :func:`~shopmtl.core.engine.predict.load_run`)."""
    from shopmtl.core.config import TaskConfig
    from shopmtl.core.data.features import encode_rows
    from shopmtl.core.data.prepare import PreparedTask, build_task_data, subsample
    from shopmtl.core.engine.evaluate import Scorer
    from shopmtl.core.engine.predict import RunError, load_run

    try:
        run = load_run(run_dir, dict(registered), allow_pickle=allow_pickle)
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
            return scorer.predict_rows(
                prepared, encode_rows(prepared.spec, extra, prepared.state, run.bank)
            )

        out[name] = TaskPredictions(
            name=name,
            spec=spec,
            split=split,
            frame=frame,
            labels=rows.labels,
            predictions=scorer.predict_rows(prepared, rows),
            metrics=metrics.get(name, {}).get(split, {}),
            full_frame=full[split],
            predict=predict,
            calibration=run.calibration.get(name, {}),
        )
    return out, None


# ----------------------------------------------------------------- HTML


def _items_html(items: Sequence[Plot]) -> str:
    parts = []
    for item in items:
        caption = html.escape(item.caption)
        if item.file:
            parts.append(
                f'<figure><img src="{html.escape(item.file)}" alt="{caption}" loading="lazy">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        else:
            parts.append(f'<p class="{"report-error" if item.error else "note"}">{caption}</p>')
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


def build_report(
    run_dir: str | Path,
    registered: Mapping[str, TaskSpec],
    *,
    split: str = "test",
    predictions: bool = True,
    allow_pickle: bool = False,
) -> Report:
    """Write ``RUN_DIR/report/index.html`` and its PNG plots; see the module docstring."""
    from shopmtl.core.runs import checkpoint, manifest

    run_dir = Path(run_dir)
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file():
        raise ReportError(
            f"{run_dir} has no metrics.json: report on a finished run (`shopmtl train` writes it at the end)"
        )
    manifest.verify_run(run_dir)  # before anything of the run is read (the model is hashed once)
    checkpoint.check_contents(run_dir)
    record = checkpoint.read_json(metrics_file)
    by_task: dict[str, Any] = record.get("tasks", {})
    baselines: dict[str, Any] = record.get("baselines", {}).get(split, {})
    history: list[dict[str, Any]] = record.get("history", [])
    best_step = record.get("best_step")
    names = list(by_task) or sorted({t for e in history for t in e.get("val", {})})
    for name in names:  # they name the plots' files
        manifest.task_name(name, metrics_file)
    specs = {n: registered[n] for n in names if n in registered}

    predicted, notes = _predictions_and_notes(
        run_dir, registered, split, names, by_task, predictions, allow_pickle
    )
    # Only now, with the model loaded (a corrupt run fails above), does an earlier report go:
    # its plots must not linger.
    folder = run_dir / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("*.png"), folder / INDEX]:
        stale.unlink(missing_ok=True)

    config_text = _config_line(run_dir)
    owners = {}
    if (run_dir / "plugins.json").is_file():
        owners = checkpoint.read_json(run_dir / "plugins.json").get("tasks", {})

    sections = []
    overview = [
        f'<h2 id="overview">Overview <small>{html.escape(split)} split</small></h2>',
        overview_table_html(names, specs, by_task, baselines, split),
        _items_html([Plot(n) for n in notes]),
        _items_html(training_plots(history, best_step, folder)),
    ]
    sections.append("\n".join(overview))
    for name in names:
        sections.append(
            _task_section(
                name,
                specs.get(name),
                owners.get(name),
                by_task.get(name, {}).get(split),
                baselines.get(name, {}),
                split,
                history,
                best_step,
                predicted.get(name),
                folder,
            )
        )

    page = _page(run_dir, names, sections, config_text, best_step, record.get("steps"))
    index = folder / INDEX
    write_text_atomic(index, page)
    return Report(index=index, images=sorted(folder.glob("*.png")), notes=notes)


def _predictions_and_notes(
    run_dir: Path,
    registered: Mapping[str, TaskSpec],
    split: str,
    names: Sequence[str],
    by_task: Mapping[str, Any],
    predictions: bool,
    allow_pickle: bool = False,
) -> tuple[dict[str, TaskPredictions], list[str]]:
    """Each task's predictions on ``split`` (for the plots), and the notes on what is missing."""
    notes = []
    unknown = [n for n in names if n not in registered]
    if unknown:
        notes.append(
            f"No installed plugin provides {', '.join(unknown)}: their metrics are shown without "
            "directions, and the run's model cannot be loaded for prediction plots."
        )
    predicted: dict[str, TaskPredictions] = {}
    if predictions and not unknown:
        predicted, why = task_predictions(run_dir, registered, split, by_task, allow_pickle)
        if why:
            notes.append(why)
    elif not predictions:
        notes.append("Prediction plots skipped (--no-predictions).")
    return predicted, notes


def _config_line(run_dir: Path) -> str:
    """``run NAME · encoder NAME · seed N · `` from the run's config.yaml (empty without one)."""
    if not (run_dir / "config.yaml").is_file():
        return ""
    import yaml

    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return (
            ""  # a header line is not worth failing the report for; load_run names a broken config
        )
    if not isinstance(config, dict):
        return ""
    encoder = config.get("encoder", {})
    return (
        f"run <b>{html.escape(str(config.get('run_name', run_dir.name)))}</b> · encoder "
        f"{html.escape(str(encoder.get('name')))}"
        + (" (random init)" if encoder.get("random_init") else "")
        + f" · seed {html.escape(str(config.get('seed')))} · "
    )


def _task_section(
    name: str,
    spec: TaskSpec | None,
    owner: str | None,
    model: Mapping[str, Any] | None,
    baselines: Mapping[str, Any],
    split: str,
    history: list[dict[str, Any]],
    best_step: Any,
    predicted: TaskPredictions | None,
    folder: Path,
) -> str:
    """One task's section: its metrics beside the baselines, its validation curves, its prediction plots."""
    kind = spec.kind if spec else "unknown kind"
    owner = f", plugin {owner}" if owner else ""
    parts = [
        f'<section id="task-{html.escape(name)}"><h2>{html.escape(name)} <small>{html.escape(kind)}{html.escape(owner)}</small></h2>'
    ]
    if spec is not None:
        parts.append(f"<p>{html.escape(spec.description)}</p>")
    parts.append(f"<h3>Metrics ({html.escape(split)})</h3>")
    if model is None:
        parts.append(_items_html([Plot(f"No {split} metrics for this task in metrics.json.")]))
    else:
        parts.append(metrics_table_html(name, spec, model, baselines, split))
        if not baselines:
            parts.append(
                _items_html(
                    [
                        Plot(
                            f"No baselines on {split}"
                            + (" (only test has them)." if split != "test" else ".")
                        )
                    ]
                )
            )
    parts.append("<h3>Training</h3>")
    parts.append(_items_html(validation_curves(name, spec, history, best_step, folder)))
    if predicted is not None:
        parts.append(f"<h3>Predictions of the best model ({html.escape(split)})</h3>")
        items = kind_plots(predicted, folder)
        parts.append(_items_html(items or [Plot(f"No plots for tasks of kind {kind}.")]))
    parts.append("</section>")
    return "\n".join(parts)


def _page(
    run_dir: Path,
    names: list[str],
    sections: list[str],
    config_text: str,
    best_step: Any,
    steps: Any,
) -> str:
    """The whole HTML page around the sections."""
    nav = "".join(f'<a href="#task-{html.escape(n)}">{html.escape(n)}</a>' for n in names)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>shopmtl report: {html.escape(run_dir.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>shopmtl report</h1>
<p class="meta">{config_text}best model at step {html.escape(str(best_step))} of {html.escape(str(steps))}
 · {html.escape(str(run_dir.resolve()))} · generated {generated}</p>
<nav><a href="#overview">overview</a>{nav}</nav>
{"".join(sections)}
</body></html>
"""
