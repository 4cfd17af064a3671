"""The default losses by task kind, each masking missing labels (``NaN``).

A task passes its own ``loss`` to :class:`~shopmtl.registry.spec.TaskSpec` to replace them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F


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
