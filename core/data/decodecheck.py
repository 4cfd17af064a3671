"""Check a task's ``decode`` the way ``predict`` and ``serve`` call it: on rows, and on no rows.

``serve`` lists each task's output columns at start-up by predicting zero rows, and a
file predicted in chunks may end on an empty one, so ``decode`` must take zero rows
(``np.zeros((0, n))``): ``.reshape(len(p), -1)`` cannot, numpy refuses to infer a
dimension of an empty array. And an output column named like one of the task's input
columns would shadow the input in ``predict``'s output, so it is refused here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from shopmtl.registry.messages import error as _exc
from shopmtl.registry.messages import short as _short
from shopmtl.registry.spec import EvalBatch, TaskSpec

__all__ = ["check_decode", "made_up_predictions"]


def made_up_predictions(spec: TaskSpec, rows: int, seed: int = 0) -> np.ndarray:
    """Predictions of the task's shape and range for ``rows`` rows (float32, as a run decodes)."""
    rng = np.random.default_rng(seed)
    width = spec.n_predictions
    if spec.kind == "regression":
        values = rng.normal(size=(rows, width))
    elif spec.kind == "multiclass":
        values = rng.random((rows, width))
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1e-12)
    else:
        values = rng.random((rows, width))
    return values.astype(np.float32)


def check_decode(spec: TaskSpec, frame: Any) -> list[str]:
    """Problems of ``spec``'s decode on ``frame``'s rows and on zero rows; none for the default."""
    if spec.decode is None:
        return []
    calibration: Mapping[str, Any] = {}
    if spec.calibrate is not None:
        calibration = _calibration(spec, frame)
        if isinstance(calibration, str):
            return [calibration]
    problems = []
    outputs = None
    for rows in (min(len(frame), 8), 0):
        predictions = made_up_predictions(spec, rows)
        decoded, problem = _decoded(spec, predictions, calibration)
        if problem is not None:
            problems.append(problem)
        elif decoded is not None and outputs is None:
            outputs = list(decoded.columns)
    inputs = set(spec.columns)
    clashes = [c for c in outputs or () if c in inputs]
    if clashes:
        problems.append(
            f"decode returns column(s) {', '.join(map(repr, clashes))}, which the task also reads "
            "or labels: predict's output holds the input columns beside the predictions -- "
            f"rename them (e.g. {clashes[0] + '_predicted'!r})"
        )
    return problems


def _decoded(
    spec: TaskSpec, predictions: np.ndarray, calibration: Mapping[str, Any]
) -> tuple[Any, str | None]:
    import pandas as pd

    rows = len(predictions)
    shape = f"predictions of shape {predictions.shape}"
    try:
        decoded = (
            spec.decode(predictions, calibration)
            if spec.calibrate is not None
            else spec.decode(predictions)
        )
    except Exception as exc:  # noqa: BLE001 -- the failure is the finding
        fix = (
            " -- decode must take zero rows (serve lists its outputs so): write "
            "p.reshape(-1, n) or p[:, 0], not p.reshape(len(p), -1)"
            if rows == 0
            else ""
        )
        return None, f"decode raised {_exc(exc)} on {shape}{fix}"
    if not isinstance(decoded, pd.DataFrame):
        return None, f"decode returned {_short(decoded)} on {shape}: return a pandas DataFrame"
    if len(decoded) != rows:
        return None, (
            f"decode returned {len(decoded)} rows for {shape}: return one row per prediction"
        )
    return decoded, None


def _calibration(spec: TaskSpec, frame: Any) -> Mapping[str, Any] | str:
    """``spec.calibrate`` on made-up predictions for ``frame`` (its result, or the problem)."""
    import pandas as pd

    labels = np.column_stack(
        [pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in spec.labels]
    ).reshape(len(frame), len(spec.labels))
    predictions = made_up_predictions(spec, len(frame))
    batch = EvalBatch(
        split="val",
        frame=frame,
        predictions=predictions,
        labels=labels,
        score=lambda rows: made_up_predictions(spec, len(rows)),
    )
    try:
        result = spec.calibrate(batch)
    except Exception as exc:  # noqa: BLE001
        return f"calibrate raised {_exc(exc)} on the val split with made-up predictions"
    if not isinstance(result, Mapping):
        return f"calibrate returned {_short(result)}: return a JSON-able dict"
    return result
