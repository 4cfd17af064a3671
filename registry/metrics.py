"""Metric helpers a task's ``metrics`` callable can reuse (public: ``from shopmtl import log1p_regression_metrics``)."""

from __future__ import annotations

import numpy as np


def log1p_regression_metrics(
    labels: np.ndarray, predictions: np.ndarray, unit: str = "units"
) -> dict[str, float]:
    """RMSE, MAE and R² on a log1p target, and MAE back in the original ``unit``.

    Rows with a missing (NaN) label are skipped and predictions are clipped at 0 first,
    since a log1p count is never negative. The keys are ``rmse``, ``mae``,
    ``mae_<unit>`` and ``r2``; all NaN when no label is present.
    """
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    y = np.asarray(labels, dtype=float).reshape(len(labels), -1)[:, 0]
    pred = np.asarray(predictions, dtype=float).reshape(len(predictions), -1)[:, 0]
    present = ~np.isnan(y)
    y, pred = y[present], np.clip(pred[present], 0.0, None)
    if len(y) == 0:
        return dict.fromkeys(("rmse", "mae", f"mae_{unit}", "r2"), float("nan"))
    return {
        "rmse": float(root_mean_squared_error(y, pred)),
        "mae": float(mean_absolute_error(y, pred)),
        f"mae_{unit}": float(mean_absolute_error(np.expm1(y), np.expm1(pred))),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
    }
