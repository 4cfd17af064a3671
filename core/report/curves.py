"""Training curves for the report: each task's loss and validation metrics against the step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shopmtl.core.report import plots
from shopmtl.core.report.figures import Plot
from shopmtl.core.report.tables import finite_number, scalar_metric_names
from shopmtl.registry.spec import TaskSpec


def validation_curves(
    name: str,
    spec: TaskSpec | None,
    history: Sequence[Mapping[str, Any]],
    best_step: int | None,
    folder: Path,
) -> list[Plot]:
    points = [
        (entry["step"], entry["val"][name]) for entry in history if name in entry.get("val", {})
    ]
    if not points:
        return [Plot("No validation history for this task in metrics.json.")]
    curves = {}
    for metric in scalar_metric_names(spec, [m for _, m in points]):
        xy = [(step, finite_number(m.get(metric))) for step, m in points]
        xy = [(s, v) for s, v in xy if v is not None]
        if xy:
            curves[metric] = ([s for s, _ in xy], [v for _, v in xy])
    if not curves:
        return [Plot("No numeric validation metrics in the history.")]
    directions = dict(spec.metric_directions) if spec is not None else {}
    file = f"{name}_val_curves.png"
    plots.metric_curves(
        f"{name}: validation metrics over training", curves, directions, best_step, folder / file
    )
    return [
        Plot(
            f"Validation metrics at each evaluation ({len(points)}); the dashed line marks the step of the "
            "best model, which every other number and plot in this report uses.",
            file,
        )
    ]


def training_plots(
    history: Sequence[Mapping[str, Any]], best_step: int | None, folder: Path
) -> list[Plot]:
    """The selection score over training and, when recorded, each task's training loss."""
    items = []
    score = [(e["step"], finite_number(e.get("score"))) for e in history]
    score = [(s, v) for s, v in score if v is not None]
    if score:
        file = "selection_score.png"
        plots.line_curves(
            "Selection score on validation",
            {"score": ([s for s, _ in score], [v for _, v in score])},
            "score (higher is better)",
            folder / file,
            best_step,
        )
        items.append(
            Plot(
                "The aggregate early stopping and model selection watch: the mean over tasks of each "
                "task's selection metric on validation (metrics where lower is better enter negated).",
                file,
            )
        )
    losses: dict[str, tuple[list[float], list[float]]] = {}
    for entry in history:
        for task, value in (entry.get("train_loss") or {}).items():
            value = finite_number(value)
            if value is not None:
                steps, values = losses.setdefault(task, ([], []))
                steps.append(entry["step"])
                values.append(value)
    if losses:
        file = "train_loss.png"
        plots.line_curves(
            "Training loss per task",
            losses,
            "mean loss since the previous evaluation",
            folder / file,
        )
        items.append(
            Plot(
                "Each task's own (unweighted) training loss, averaged over its batches between "
                "evaluations. Losses of different kinds are on different scales.",
                file,
            )
        )
    else:
        items.append(
            Plot(
                "Training losses were not recorded in metrics.json (no train_loss in its history)."
            )
        )
    return items
