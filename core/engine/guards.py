"""Stop a diverging run before it writes anything: non-finite losses, gradients or weights.

A NaN spreads silently: one bad step turns every weight it touches into NaN, the run
still "finishes", and `predict` answers nonsense with exit 0. The checks here run where
their cost is already paid (the loss is read as a float every step; the gradient norm
is computed for clipping) and raise :class:`TrainingDiverged` naming the task, the step
and the likely cause, so the last good checkpoint and ``model/`` stay as they were.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from shopmtl.core.config import Config


class TrainingDiverged(RuntimeError):
    """A loss, gradient or weight became NaN or infinite; nothing was written after it."""


def _likely_causes(config: Config) -> str:
    training = config.training
    return (
        f"likely causes: a learning rate too high (training.learning_rate={training.learning_rate:g}, "
        f"head_learning_rate={training.head_learning_rate:g}, wide_learning_rate={training.wide_learning_rate:g}), "
        "or input values of an extreme scale (check the task's numeric columns)"
    )


def check_loss(value: float, task: str, step: int, config: Config) -> None:
    """Raise if ``task``'s training loss at ``step`` is NaN or infinite."""
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"training stopped at step {step}: task '{task}' has a {value} loss; {_likely_causes(config)}. "
            "Nothing was written after the last good checkpoint; fix the cause and train again (or --resume)."
        )


def check_gradient_norm(norm: torch.Tensor | float | None, step: int, config: Config) -> None:
    """Raise if the total gradient norm of ``step`` (as clipping computed it) is NaN or infinite."""
    if norm is not None and not math.isfinite(float(norm)):
        raise TrainingDiverged(
            f"training stopped at step {step}: the gradient norm is {float(norm)}; {_likely_causes(config)}. "
            "Nothing was written after the last good checkpoint."
        )


def check_weights(named: Iterable[tuple[str, torch.Tensor]], step: int, config: Config) -> None:
    """Raise before a save if any weight is NaN or infinite, naming the first one."""
    for name, tensor in named:
        if not bool(torch.isfinite(tensor).all()):
            raise TrainingDiverged(
                f"training stopped at step {step}: weight {name} holds NaN or infinite values, so it was not saved; "
                f"{_likely_causes(config)}. The last good checkpoint and model/ are unchanged."
            )


def check_primary_metrics(
    metrics: Mapping[str, Mapping[str, object]], primary: Mapping[str, str], step: int
) -> None:
    """Raise if a task's primary metric could not be computed at a validation (``None``).

    Model selection and early stopping compare it; a run that went on would pick its
    "best" model blind and fail only at the end (a label column of strings did that).
    """
    for task, values in metrics.items():
        name = primary.get(task)
        if name is not None and values.get(name) is None:
            raise TrainingDiverged(
                f"training stopped at step {step}: task '{task}' has no value for its primary metric '{name}' on the "
                f"validation rows (the metric could not be computed: labels of one class only, labels that are not "
                f"numbers, or non-finite predictions). Check the task with `shopmtl plugins check <its plugin>`."
            )
