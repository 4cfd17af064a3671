"""How tasks share the encoder's pooled vector: hard sharing, MMoE or PLE gates over experts.

Hard sharing feeds every head the same pooled vector. MMoE (Ma et al., KDD 2018) gives each
task a softmax gate over a pool of shared experts; PLE (Tang et al., RecSys 2020, one CGC
level) adds experts private to each task, so conflicting tasks need not fight over the
same experts. Both keep the pooled width, so heads do not change, and add the gated
mixture to the pooled vector as a residual, so training starts close to hard sharing.

Registered as ``sharing.kind: hard | mmoe | ple`` by :mod:`shopmtl.core.mtl.builtin`; a
plugin adds its own kinds through ``register_sharing_kinds``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


def _expert(width: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))


class GatedExperts(nn.Module):
    """Per-task softmax gates over shared experts (MMoE) plus optional private ones (PLE)."""

    def __init__(
        self, tasks: Sequence[str], width: int, shared: int, private: int, hidden: int
    ) -> None:
        super().__init__()
        self.shared = nn.ModuleList(_expert(width, hidden) for _ in range(shared))
        self.private = nn.ModuleDict(
            {t: nn.ModuleList(_expert(width, hidden) for _ in range(private)) for t in tasks}
        )
        self.gates = nn.ModuleDict({t: nn.Linear(width, shared + private) for t in tasks})

    def forward(self, task: str, pooled: torch.Tensor) -> torch.Tensor:
        experts = [*self.shared, *self.private[task]]
        outputs = torch.stack([expert(pooled) for expert in experts], dim=1)  # (B, E, width)
        weights = self.gates[task](pooled).softmax(dim=-1).unsqueeze(-1)  # (B, E, 1)
        return pooled + (weights * outputs).sum(dim=1)


def mmoe(tasks: Sequence[str], width: int, options: Mapping[str, Any]) -> GatedExperts:
    """MMoE: per-task gates over ``experts`` shared experts (hidden width ``expert_hidden``)."""
    return GatedExperts(tasks, width, int(options.get("experts", 4)), 0, _hidden(width, options))


def ple(tasks: Sequence[str], width: int, options: Mapping[str, Any]) -> GatedExperts:
    """PLE (one CGC level): MMoE plus ``task_experts`` private experts per task."""
    shared, private = int(options.get("experts", 4)), int(options.get("task_experts", 1))
    return GatedExperts(tasks, width, shared, private, _hidden(width, options))


def _hidden(width: int, options: Mapping[str, Any]) -> int:
    return int(options.get("expert_hidden") or width)  # None: the encoder's width
