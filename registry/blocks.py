"""Building blocks a task may use: the default head, masked losses, activations, decoders.

They are defaults, not requirements: a task passes its own ``build_head``, ``loss`` or
``decode`` to :class:`~shopmtl.registry.contract.TaskSpec` to replace any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from shopmtl.registry.contract import HeadInput, HeadSpec, TaskSpec


class FeatureHead(nn.Module):
    """An MLP over the pooled text, the optional pair, numeric and categorical features.

    With a text pair it uses the sentence-BERT combination ``[u, v, u*v, |u-v|]``,
    so the two texts are encoded independently (each distinct text once) and still
    interact.
    """

    def __init__(self, spec: HeadSpec, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, min(16, max(2, card))) for card in spec.categorical_cardinalities
        )
        width = spec.hidden_size * (4 if spec.has_pair else 1)
        width += 2 * spec.n_numeric + sum(e.embedding_dim for e in self.embeddings)
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(width, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, spec.n_outputs),
        )

    def forward(self, x: HeadInput) -> torch.Tensor:
        parts = [x.text]
        if x.pair is not None:
            parts += [x.pair, x.text * x.pair, (x.text - x.pair).abs()]
        parts += [x.numeric, x.numeric_missing]
        parts += [emb(x.categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat([p.to(x.text.dtype) for p in parts], dim=-1))


def default_head(spec: HeadSpec) -> nn.Module:
    """The head used when a task gives no ``build_head``."""
    return FeatureHead(spec)


def _flat(outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return outputs.float().reshape(labels.shape), labels.float()


def masked_mse(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the labels that are present (``NaN`` = missing)."""
    outputs, labels = _flat(outputs, labels)
    present = ~torch.isnan(labels)
    if not present.any():
        return outputs.sum() * 0.0  # keeps the graph, so DDP sees every parameter used
    return F.mse_loss(outputs[present], labels[present])


def masked_bce(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits, per label, over labels that are present."""
    outputs, labels = _flat(outputs, labels)
    present = ~torch.isnan(labels)
    if not present.any():
        return outputs.sum() * 0.0
    return F.binary_cross_entropy_with_logits(outputs[present], labels[present])


def masked_cross_entropy(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits ``(B, C)`` against class indices ``(B, 1)``; ``NaN`` skipped."""
    labels = labels.float().reshape(-1)
    present = ~torch.isnan(labels)
    if not present.any():
        return outputs.sum() * 0.0
    return F.cross_entropy(outputs.float()[present], labels[present].long())


DEFAULT_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "regression": masked_mse,
    "binary": masked_bce,
    "multilabel": masked_bce,
    "multiclass": masked_cross_entropy,
}


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
    frame = pd.DataFrame({"predicted_labels": [" ".join(n for n, c in zip(names, row) if c) for row in chosen]})
    for i, name in enumerate(names):
        frame[f"p_{name}"] = predictions[:, i]
    return frame


def log1p_regression_metrics(labels: np.ndarray, predictions: np.ndarray, unit: str = "units") -> dict[str, float]:
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
