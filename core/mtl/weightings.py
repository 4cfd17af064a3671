"""Loss weightings shipped with shopmtl (registered in :mod:`shopmtl.core.mtl.builtin`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


class StaticWeighting(nn.Module):
    """Each task's loss times its configured weight (``tasks.<name>.weight``)."""

    def __init__(
        self, tasks: Sequence[str], weights: Mapping[str, float], options: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.weights = {t: float(weights.get(t, 1.0)) for t in tasks}

    def forward(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.weights[task]


class UncertaintyWeighting(nn.Module):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

    Each task learns ``s = log(sigma^2)``; its loss becomes ``w * (exp(-s) * L + s)``,
    so noisy tasks are down-weighted and the ``+ s`` term keeps sigma from growing
    without bound. ``w`` is the static weight (1 unless configured).
    """

    def __init__(
        self, tasks: Sequence[str], weights: Mapping[str, float], options: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.index = {t: i for i, t in enumerate(tasks)}
        self.weights = {t: float(weights.get(t, 1.0)) for t in tasks}
        self.log_variance = nn.Parameter(
            torch.full((len(tasks),), float(options.get("initial_log_variance", 0.0)))
        )

    def forward(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        s = self.log_variance[self.index[task]]
        return self.weights[task] * (torch.exp(-s) * loss + s)
