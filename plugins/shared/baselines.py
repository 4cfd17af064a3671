"""Score a task's baselines with the task's own metrics: one helper the built-in tasks share.

A baseline is a function from a split's rows to predictions; it is scored exactly as the
network is, through an :class:`~shopmtl.EvalBatch` and the task's ``metrics``, so the
baselines and the model are compared on the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from shopmtl import EvalBatch, TaskData

#: A fitted baseline: rows in, predictions out (one row per input row).
Predictor = Callable[[pd.DataFrame], np.ndarray]


def _as_columns(values: Any) -> np.ndarray:
    """Predictions as ``(n, n_predictions)`` floats: a single column comes back 1-D from most fits."""
    array = np.asarray(values, dtype=float)
    return array.reshape(-1, 1) if array.ndim == 1 else array


def baseline_metrics(
    predictors: Mapping[str, Predictor],
    data: TaskData,
    split: str,
    labels: Sequence[str],
    metrics: Callable[[EvalBatch], dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Each baseline's metrics on ``split``, as the task's ``metrics`` computes them for the model.

    Extra rows (``EvalBatch.score`` and ``score_stream``, e.g. ranking candidates) are scored by
    the same predictor; baselines score row by row, so block by block equals the whole frame.
    """
    frame = data[split]
    truth = frame[list(labels)].to_numpy(dtype=float)
    scores: dict[str, dict[str, Any]] = {}
    for name, predict in predictors.items():

        def score(extra: pd.DataFrame, predict: Predictor = predict) -> np.ndarray:
            return _as_columns(predict(extra))

        def score_stream(frames: Any, score: Callable[..., np.ndarray] = score) -> np.ndarray:
            return np.concatenate([score(f) for f in frames] or [np.zeros((0, truth.shape[1]))])

        batch = EvalBatch(
            split=split,
            frame=frame,
            predictions=score(frame),
            labels=truth,
            score=score,
            extras=data.extras,
            score_stream=score_stream,
        )
        scores[name] = metrics(batch)
    return scores
