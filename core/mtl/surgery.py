"""Gradient surgery across tasks: PCGrad (Yu et al., NeurIPS 2020).

Each micro-batch trains one task, so an optimiser step over several accumulated
micro-batches sees several tasks. PCGrad keeps each task's gradient on the *shared*
parameters (encoder, experts) apart, projects every task's gradient off the others'
where they conflict (negative dot product), and sums the results. Task heads are not
shared and keep their plain gradients. Works with gradient accumulation (that is where
the tasks meet), mixed precision (projections are scale-invariant, so a loss scaler's
factor passes through) and several processes (per-task gradients are averaged across
processes before projection; every process draws the same tasks).

Registered as ``training.gradient_surgery: pcgrad`` by :mod:`shopmtl.core.mtl.builtin`;
a plugin adds its own through ``register_gradient_surgeries``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch


class PCGrad:
    """Collects per-task gradients of shared parameters and combines them with PCGrad."""

    def __init__(self, shared: Iterable[torch.nn.Parameter], seed: int = 0) -> None:
        self.params = [p for p in shared if p.requires_grad]
        self.task_grads: dict[str, torch.Tensor] = {}
        self.rng = np.random.default_rng(seed)

    def capture(self, task: str) -> None:
        """Move the shared parameters' gradients of the last backward into ``task``'s slot."""
        flat = torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                for p in self.params
            ]
        )
        self.task_grads[task] = self.task_grads[task] + flat if task in self.task_grads else flat
        for p in self.params:
            p.grad = None

    def apply(self, reduce: Callable[[torch.Tensor], torch.Tensor] = lambda g: g) -> None:
        """Project conflicting task gradients, sum them, and write them back as ``.grad``."""
        if not self.task_grads:
            return
        names = sorted(self.task_grads)
        grads = {t: reduce(self.task_grads[t]) for t in names}
        total = torch.zeros_like(grads[names[0]])
        for task in names:
            g = grads[task].clone()
            others = [s for s in names if s != task]
            for other in self.rng.permutation(others) if others else ():
                reference = grads[str(other)]
                dot = torch.dot(g, reference)
                if dot < 0:
                    g -= dot / (torch.dot(reference, reference) + 1e-12) * reference
            total += g
        offset = 0
        for p in self.params:
            n = p.numel()
            p.grad = total[offset : offset + n].view_as(p).to(p.dtype).clone()
            offset += n
        self.task_grads.clear()


def pcgrad(shared: Sequence[torch.nn.Parameter], options: Mapping[str, Any]) -> PCGrad:
    """PCGrad over the shared parameters; the tasks meet within one step, so it needs accumulation."""
    if int(options.get("gradient_accumulation_steps", 1)) < 2:
        raise ValueError(
            "it projects task gradients within one optimiser step, so set "
            "training.gradient_accumulation_steps to at least 2 "
            f"(e.g. {len(options.get('tasks', ())) or 2}, one per task)"
        )
    return PCGrad(shared, seed=int(options.get("seed", 0)))
