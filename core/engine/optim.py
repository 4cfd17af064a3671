"""The optimiser and learning-rate schedule of a run: AdamW in parameter groups, warm-up then linear decay."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from shopmtl.core.config import Config
from shopmtl.core.model.heads import wide_parameters
from shopmtl.core.model.model import MultiTaskModel


def param_groups(model: MultiTaskModel, config: Config) -> list[dict[str, Any]]:
    """AdamW groups: encoder, heads and the heads' wide paths each at their learning rate;
    no decay on biases and norms."""
    wide = {id(p) for p in wide_parameters(model)}
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = defaultdict(list)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = (
            "encoder" if name.startswith("encoder.") else "wide" if id(param) in wide else "heads"
        )
        decay = param.ndim >= 2 and "norm" not in name.lower()
        groups[(part, decay)].append(param)
    rates = {
        "encoder": config.training.learning_rate,
        "heads": config.training.head_learning_rate,
        "wide": config.training.wide_learning_rate,
    }
    return [
        {
            "params": params,
            "lr": rates[part],
            "weight_decay": config.training.weight_decay if decay else 0.0,
        }
        for (part, decay), params in groups.items()
    ]


def warmup_linear(total_steps: int, warmup_ratio: float):
    """Learning-rate multiplier: linear warm-up, then linear decay to zero."""
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def make_optimizer(
    model: MultiTaskModel, config: Config
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over :func:`param_groups` and its :func:`warmup_linear` schedule over ``training.max_steps``."""
    # fused: one kernel per parameter group instead of several per tensor (CPU and GPU)
    optimizer = torch.optim.AdamW(param_groups(model, config), fused=True)
    factor = warmup_linear(config.training.max_steps, config.training.warmup_ratio)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
