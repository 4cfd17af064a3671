"""Prediction columns for people, by task kind: the decoder a task gets when it gives none.

Public as :func:`shopmtl.decode_by_kind`, so a task's own ``decode`` can start from it. Numpy and
pandas only: decoding never needs torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def decode_by_kind(kind: str, predictions: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """Prediction columns for people: a value, a probability, a class name, label names."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim == 1:
        predictions = predictions[:, None]
    if kind == "regression":
        return pd.DataFrame({"prediction": predictions[:, 0]})
    if kind == "binary":
        return pd.DataFrame({"probability": predictions[:, 0]})
    if kind == "multiclass":
        frame = pd.DataFrame({"prediction": [names[i] for i in predictions.argmax(axis=1)]})
        frame["confidence"] = predictions.max(axis=1)
        return frame
    chosen = predictions >= 0.5
    frame = pd.DataFrame(
        {"predicted_labels": [" ".join(n for n, c in zip(names, row) if c) for row in chosen]}
    )
    for i, name in enumerate(names):
        frame[f"p_{name}"] = predictions[:, i]
    return frame
