"""Raw head outputs -> predictions (activation by kind, or the task's ``predict``) -> columns."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from shopmtl.registry.decoding import decode_by_kind
from shopmtl.registry.spec import TaskSpec


def activate(kind: str, outputs: torch.Tensor) -> torch.Tensor:
    """Raw head outputs -> what metrics read: values, or probabilities."""
    outputs = outputs.float()
    if kind == "regression":
        return outputs
    if kind == "multiclass":
        return outputs.softmax(dim=-1)
    return outputs.sigmoid()


def predict(task: TaskSpec, outputs: torch.Tensor) -> torch.Tensor:
    """Raw head outputs -> predictions ``(B, n_predictions)``: the task's ``predict``, else
    the kind's activation."""
    if task.predict is not None:
        out = task.predict(outputs.float()).float()
        return out.unsqueeze(-1) if out.dim() == 1 else out
    return activate(task.kind, outputs)


def default_decode(task: TaskSpec) -> Callable[[np.ndarray], pd.DataFrame]:
    """Turn predictions into readable columns, by kind, for tasks that give no ``decode``."""

    def decode(predictions: np.ndarray) -> pd.DataFrame:
        return decode_by_kind(task.kind, predictions, task.classes or task.labels)

    return decode
