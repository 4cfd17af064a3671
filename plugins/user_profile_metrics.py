"""The user_profile task's labels, metrics, per-label thresholds (calibration) and decoding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from shopmtl import EvalBatch

#: The 20 label words; each is also the name of its 0/1 label column.
LABELS: tuple[str, ...] = (
    "HEART", "GLASS", "CHRISTMAS", "BAG", "CANDLE", "FLOWER", "BOX", "ROSE", "METAL", "HOLDER",
    "DECORATION", "HANGING", "CAKE", "NECKLACE", "PAPER", "T-LIGHT", "CARD", "WALL", "COVER", "MUG",
)  # fmt: skip


METRIC_DIRECTIONS: dict[str, str] = {"micro_f1": "max", "macro_f1": "max", "map": "max"}


#: Default decision threshold: TASKS.md's, and a label's when calibration has no better one.
DEFAULT_THRESHOLD = 0.5


#: Thresholds calibration tries for each label: 0.05, 0.10, ..., 0.95 (0.5 included).
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))


def _arrays(batch: EvalBatch) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(batch.labels, dtype=float).reshape(len(batch.labels), -1)
    p = np.asarray(batch.predictions, dtype=float).reshape(len(batch.predictions), -1)
    return y, p


def thresholds_of(calibration: Mapping[str, Any] | None, n_labels: int) -> np.ndarray:
    """Per-label thresholds ``(n_labels,)`` from a calibration (``{}``/``None``: all 0.5).

    A calibration maps label words to thresholds (``{"thresholds": {"HEART": 0.3, ...}}``);
    a label it does not name keeps 0.5, and so does every label when the predictions do not
    have one column per word of :data:`LABELS`.
    """
    chosen = dict((calibration or {}).get("thresholds") or {})
    if n_labels != len(LABELS):
        return np.full(n_labels, DEFAULT_THRESHOLD)
    return np.array([float(chosen.get(word, DEFAULT_THRESHOLD)) for word in LABELS])


def _f1s(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> tuple[float, list[float]]:
    """Micro-F1 over the present cells and each label's F1 (labels with a present cell)."""
    from sklearn.metrics import f1_score

    present = ~np.isnan(y)
    chosen = (p >= thresholds[None, :]).astype(int)
    # Micro-F1 pools every present (row, label) cell: a binary F1 over the flattened cells.
    micro = f1_score(y[present].astype(int), chosen[present], zero_division=0)
    per_label = [
        f1_score(y[present[:, k], k].astype(int), chosen[present[:, k], k], zero_division=0)
        for k in range(y.shape[1])
        if present[:, k].any()
    ]
    return float(micro), per_label


def user_profile_metrics(batch: EvalBatch) -> dict[str, float]:
    """Micro- and macro-F1 at the calibrated per-label thresholds (``batch.calibration``;
    0.5 without one, as TASKS.md defines them), and mean average precision over labels.

    Missing labels (``NaN``) are skipped cell by cell. The mean AP is over labels with at
    least one positive in the split (AP is undefined without one); it needs no threshold.
    """
    from sklearn.metrics import average_precision_score

    y, p = _arrays(batch)
    present = ~np.isnan(y)
    if not present.any():
        return {name: float("nan") for name in METRIC_DIRECTIONS}
    micro, per_label = _f1s(y, p, thresholds_of(batch.calibration, y.shape[1]))
    precisions = []
    for k in range(y.shape[1]):
        truth = y[present[:, k], k].astype(int)
        if truth.any():
            precisions.append(average_precision_score(truth, p[present[:, k], k]))
    return {
        "micro_f1": micro,
        "macro_f1": float(np.mean(per_label)),
        "map": float(np.mean(precisions)) if precisions else float("nan"),
    }


def f1_at_half(batch: EvalBatch) -> tuple[float, float]:
    """``(micro-F1, macro-F1)`` at threshold 0.5 whatever the calibration (TASKS.md's)."""
    y, p = _arrays(batch)
    if not (~np.isnan(y)).any():
        return float("nan"), float("nan")
    micro, per_label = _f1s(y, p, np.full(y.shape[1], DEFAULT_THRESHOLD))
    return micro, float(np.mean(per_label))


def calibrate_user_profile(batch: EvalBatch) -> dict[str, Any]:
    """Per-label thresholds fitted on val: each label's is the one of :data:`THRESHOLD_GRID`
    that maximises its F1 (ties: the closest to 0.5); a label without a positive in val
    keeps 0.5. Returns ``{"thresholds": {word: threshold}, "val_f1": {word: F1}}``."""
    from sklearn.metrics import f1_score

    y, p = _arrays(batch)
    grid = np.array(THRESHOLD_GRID)
    by_closeness = np.argsort(np.abs(grid - DEFAULT_THRESHOLD), kind="stable")  # 0.5 first
    thresholds: dict[str, float] = {}
    scores: dict[str, float] = {}
    for k, word in enumerate(LABELS[: y.shape[1]]):
        present = ~np.isnan(y[:, k])
        truth, score = y[present, k].astype(int), p[present, k]
        if not truth.any():
            thresholds[word] = DEFAULT_THRESHOLD
            continue
        f1 = np.array([f1_score(truth, (score >= t).astype(int), zero_division=0) for t in grid])
        best = by_closeness[
            np.argmax(f1[by_closeness])
        ]  # argmax takes the first: the closest to 0.5
        thresholds[word] = float(grid[best])
        scores[word] = float(f1[best])
    return {"thresholds": thresholds, "val_f1": scores}


def decode_user_profile(
    predictions: np.ndarray, calibration: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``predicted_labels`` (words whose probability reaches their calibrated threshold,
    0.5 without calibration) and ``p_<WORD>`` per label."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim == 1:  # not reshape(len(p), -1): it cannot infer the width of zero rows
        predictions = predictions[:, None]
    names = LABELS[: predictions.shape[1]]
    chosen = predictions >= thresholds_of(calibration, predictions.shape[1])[None, :]
    frame = pd.DataFrame(
        {"predicted_labels": [" ".join(n for n, c in zip(names, row) if c) for row in chosen]}
    )
    for i, name in enumerate(names):
        frame[f"p_{name}"] = predictions[:, i]
    return frame
