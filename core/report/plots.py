"""The report's pictures: one function per kind of plot, arrays in, a PNG file out.

Plain matplotlib on the Agg canvas, without pyplot: no global backend is switched, no
window opens, and nothing here knows about runs or tasks -- :mod:`shopmtl.core.report.figures`
turns a run into the arrays these functions draw.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110
#: Actual values in grey, the model's in the accent colour, everywhere.
ACTUAL_COLOR = "#4d4d4d"
MODEL_COLOR = "#1f77b4"
BEST_COLOR = "#d62728"
CHANCE_COLOR = "#999999"


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (PNG output, no display needed)."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as PNG to ``path`` (white background) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", facecolor="white")
    return path


def _grid(n: int, columns: int) -> tuple[int, int]:
    columns = max(1, min(columns, n))
    return math.ceil(n / columns), columns


def _style(ax) -> None:
    ax.grid(True, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def metric_curves(
    title: str,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    directions: Mapping[str, str],
    best_step: int | None,
    path: Path,
) -> Path:
    """One small panel per metric: its value at each validation step, the best step marked.

    ``curves``: metric -> (steps, values); ``directions``: metric -> ``max``/``min``
    (shown as "higher/lower is better" on the y axis).
    """
    rows, columns = _grid(len(curves), 2 if len(curves) in (2, 4) else 3)
    figure = new_figure(3.8 * columns, 2.7 * rows + 0.4)
    figure.suptitle(title, fontsize=12)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    legend = True
    for ax, (metric, (steps, values)) in zip(axes, curves.items()):
        _style(ax)
        ax.plot(steps, values, marker="o", markersize=4, color=MODEL_COLOR)
        if best_step is not None and best_step in steps:
            ax.axvline(
                best_step,
                color=BEST_COLOR,
                linestyle="--",
                linewidth=1,
                label=f"best model (step {best_step})",
            )
            if legend:  # once per figure
                ax.legend(fontsize=7, loc="best", frameon=False)
                legend = False
        better = {"max": "higher is better", "min": "lower is better"}.get(
            directions.get(metric, ""), ""
        )
        ax.set_title(metric, fontsize=10)
        ax.set_ylabel(better, fontsize=8, color="#666666")
        ax.set_xlabel("training step", fontsize=8)
        ax.tick_params(labelsize=8)
        _single_point_margins(ax, steps)
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    return save(figure, path)


def _single_point_margins(ax, steps: Sequence[float]) -> None:
    """Keep one lone point off the plot's edges."""
    if len(set(steps)) == 1:
        step = float(steps[0])
        ax.set_xlim(step - max(1.0, abs(step) * 0.5), step + max(1.0, abs(step) * 0.5))


def line_curves(
    title: str,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    ylabel: str,
    path: Path,
    best_step: int | None = None,
) -> Path:
    """Several named lines on one axis (training loss per task, the selection score)."""
    figure = new_figure(7.0, 3.8)
    ax = figure.subplots()
    _style(ax)
    spread = [
        v for _, values in curves.values() for v in values if v is not None and np.isfinite(v)
    ]
    for name, (steps, values) in curves.items():
        ax.plot(steps, values, marker="o", markersize=3, label=name)
    if spread and min(spread) > 0 and max(spread) / min(spread) > 20:
        ax.set_yscale("log")
    if best_step is not None:
        ax.axvline(
            best_step,
            color=BEST_COLOR,
            linestyle="--",
            linewidth=1,
            label=f"best model (step {best_step})",
        )
    ax.set_title(title, fontsize=12)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, frameon=False, loc="best")
    all_steps = [s for steps, _ in curves.values() for s in steps]
    if all_steps:
        _single_point_margins(ax, all_steps)
    return save(figure, path)


def _heavy_tailed(values: np.ndarray) -> bool:
    """Non-negative values spanning orders of magnitude: better read on a log-like axis."""
    values = values[np.isfinite(values)]
    if len(values) == 0 or values.min() < 0:
        return False
    return float(np.quantile(values, 0.99)) > 20 * (float(np.median(values)) + 1.0)


def predicted_vs_actual(
    title: str, actual: np.ndarray, predicted: np.ndarray, quantity: str, path: Path
) -> Path:
    """Scatter of predicted against actual values with the ``y = x`` line of a perfect model."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    keep = np.isfinite(actual) & np.isfinite(predicted)
    actual, predicted = actual[keep], predicted[keep]
    if len(actual) > 5000:  # a readable cloud, and a small file
        chosen = np.random.default_rng(0).choice(len(actual), 5000, replace=False)
        actual, predicted = actual[chosen], predicted[chosen]
    figure = new_figure(5.2, 5.0)
    ax = figure.subplots()
    _style(ax)
    ax.scatter(
        actual, predicted, s=12, alpha=0.45, color=MODEL_COLOR, edgecolors="none", label="rows"
    )
    both = np.concatenate([actual, predicted]) if len(actual) else np.array([0.0, 1.0])
    low, high = float(both.min()), float(both.max())
    log_like = _heavy_tailed(both)
    if log_like:  # non-negative: zeros just inside the frame, headroom on the log part
        low, high = -0.25, high * 1.5
    else:
        pad = (high - low) * 0.03 or 1.0
        low, high = low - pad, high + pad
    ax.plot(
        [low, high],
        [low, high],
        color=CHANCE_COLOR,
        linestyle="--",
        linewidth=1,
        label="perfect prediction",
    )
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    scale = ""
    if log_like:
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_yscale("symlog", linthresh=1.0)
        scale = " (linear up to 1, log above)"
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"actual {quantity}{scale}")
    ax.set_ylabel(f"predicted {quantity}{scale}")
    ax.set_title(f"{title}\n{len(actual):,} rows", fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return save(figure, path)


def trends(
    title: str,
    series: Sequence[tuple[str, Sequence, np.ndarray, np.ndarray]],
    quantity: str,
    time_label: str,
    path: Path,
) -> Path:
    """Small multiples, one per entity: actual and predicted ``quantity`` over time.

    ``series``: (panel title, times, actual, predicted) per entity.
    """
    rows, columns = _grid(len(series), 2)
    figure = new_figure(5.2 * columns, 2.6 * rows + 0.5)
    figure.suptitle(title, fontsize=12)
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True).ravel()
    for k, (ax, (name, times, actual, predicted)) in enumerate(zip(axes, series)):
        _style(ax)
        ax.plot(times, actual, marker="o", markersize=3, color=ACTUAL_COLOR, label="actual")
        ax.plot(
            times,
            predicted,
            marker="s",
            markersize=3,
            color=MODEL_COLOR,
            linestyle="--",
            label="predicted",
        )
        ax.set_title(textwrap.shorten(name, 60, placeholder="…"), fontsize=9)
        ax.set_ylabel(quantity, fontsize=8)
        ax.set_ylim(
            bottom=min(0.0, float(np.nanmin([*actual, *predicted]))) if len(actual) else 0.0
        )
        ax.tick_params(labelsize=7)
        if len(times) and np.issubdtype(np.asarray(times).dtype, np.datetime64):
            ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=9))
            ax.xaxis.set_major_formatter(
                mdates.DateFormatter("%d %b" if _span_days(times) < 370 else "%b %Y")
            )
        if k == 0:
            ax.legend(fontsize=8, frameon=False, loc="best")
    for ax in axes[len(series) :]:
        ax.set_visible(False)
    years = sorted({str(y) for _, times, _, _ in series for y in _years(times)})
    if years and len(years) <= 2:
        time_label = f"{time_label} ({'-'.join(years)})"
    for k, ax in enumerate(axes[: len(series)]):
        if k >= len(series) - columns:  # the lowest panel of each column
            ax.set_xlabel(time_label, fontsize=8)
            ax.xaxis.set_tick_params(labelbottom=True)
    return save(figure, path)


def _span_days(times: Sequence) -> float:
    values = np.asarray(times, dtype="datetime64[ns]")
    return float((values.max() - values.min()) / np.timedelta64(1, "D")) if len(values) else 0.0


def _years(times: Sequence) -> set[int]:
    values = np.asarray(times)
    if not len(values) or not np.issubdtype(values.dtype, np.datetime64):
        return set()
    return set((values.astype("datetime64[Y]").astype(int) + 1970).tolist())


def confusion(title: str, matrix: np.ndarray, classes: Sequence[str], path: Path) -> Path:
    """Confusion matrix, rows = true class: colour = share of the true class, text = count."""
    matrix = np.asarray(matrix, dtype=float)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = max(4.2, 0.75 * len(classes) + 2.4)
    figure = new_figure(size + 1.0, size)
    ax = figure.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    colorbar = figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("share of the true class (recall on the diagonal)", fontsize=8)
    ticks = np.arange(len(classes))
    ax.set_xticks(
        ticks, labels=list(classes), rotation=30 if max(map(len, classes), default=0) > 4 else 0
    )
    ax.set_yticks(ticks, labels=list(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                f"{int(matrix[i, j]):,}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if share[i, j] > 0.55 else "black",
            )
    accuracy = np.trace(matrix) / matrix.sum() if matrix.sum() else float("nan")
    ax.set_title(f"{title}\n{int(matrix.sum()):,} rows, accuracy {accuracy:.3f}", fontsize=11)
    return save(figure, path)


def roc(
    title: str, fpr: np.ndarray, tpr: np.ndarray, auc: float, n_pos: int, n_neg: int, path: Path
) -> Path:
    """ROC curve with the chance diagonal."""
    figure = new_figure(5.0, 5.0)
    ax = figure.subplots()
    _style(ax)
    ax.plot(fpr, tpr, color=MODEL_COLOR, linewidth=2, label=f"model (AUC {auc:.3f})")
    ax.plot(
        [0, 1], [0, 1], color=CHANCE_COLOR, linestyle="--", linewidth=1, label="chance (AUC 0.5)"
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"{title}\n{n_pos:,} positives, {n_neg:,} negatives", fontsize=11)
    ax.legend(loc="lower right", fontsize=9, frameon=False)
    return save(figure, path)


def label_f1(
    title: str,
    labels: Sequence[str],
    f1: np.ndarray,
    positives: np.ndarray,
    rows: np.ndarray,
    path: Path,
) -> Path:
    """Horizontal bars of F1 per label, best at the top, each annotated with its positives."""
    order = np.argsort(-np.nan_to_num(np.asarray(f1, dtype=float), nan=-1.0), kind="stable")
    figure = new_figure(7.0, 0.28 * len(labels) + 1.6)
    ax = figure.subplots()
    _style(ax)
    ax.grid(False, axis="y")
    y = np.arange(len(labels))
    values = np.nan_to_num(np.asarray(f1, dtype=float)[order])
    ax.barh(y, values, color=MODEL_COLOR, height=0.7)
    ax.set_yticks(y, labels=[labels[i] for i in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.18)
    ax.set_xticks(np.linspace(0, 1, 6))
    for position, index in enumerate(order):
        ax.text(
            values[position] + 0.01,
            position,
            f"{values[position]:.2f}  ({int(positives[index])}/{int(rows[index])} positive)",
            va="center",
            fontsize=7,
            color="#444444",
        )
    macro = (
        float(np.nanmean(f1)) if np.isfinite(np.asarray(f1, dtype=float)).any() else float("nan")
    )
    ax.axvline(macro, color=BEST_COLOR, linestyle="--", linewidth=1, label=f"macro F1 {macro:.3f}")
    ax.set_xlabel("F1 at probability threshold 0.5")
    ax.set_title(title, fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return save(figure, path)
