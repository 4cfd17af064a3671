"""``sales``'s count losses, chosen by ``tasks.sales.settings.loss`` (see :data:`LOSSES`).

The label is log1p(units); the count losses work on units = expm1(label). Each takes the
head's raw outputs (B, k) and the labels (B, 1), skips NaN labels, and has a `predict`
turning the raw outputs into log1p(expected units), the scale every metric reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a loss is used, not when the plugin is registered
    import torch


#: Cap on a predicted log mean: exp(15) is ~3.3 million units a week, far above any
#: product's week, and keeps exp() finite in the loss and the prediction.
_MAX_LOG_MEAN = 15.0
#: Smallest ZILN scale (Wang et al. use sqrt(Keras epsilon)).
_MIN_SCALE = math.sqrt(1e-7)


def _present(outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose label is present: raw outputs ``(n, k)`` and units ``(n,)`` (a label below
    0, which log1p of a count never is, counts as 0 units)."""
    import torch

    labels = labels.float().reshape(len(labels), -1)[:, 0]
    present = ~torch.isnan(labels)
    return outputs.float().reshape(len(labels), -1)[present], torch.expm1(labels[present]).clamp(
        min=0.0
    )


def poisson_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Poisson NLL of the units, the head's output being the log of their mean.

    Returned as the half deviance (the NLL minus its minimum ``y - y log y``, a constant
    per row), so a perfect prediction scores 0; the gradient is the NLL's.
    """
    import torch

    raw, units = _present(outputs, labels)
    if len(units) == 0:
        return outputs.sum() * 0.0  # keeps the graph: every parameter stays "used"
    log_mean = raw[:, 0].clamp(max=_MAX_LOG_MEAN)
    nll = torch.exp(log_mean) - units * log_mean
    return (nll - (units - torch.xlogy(units, units))).mean()


def tweedie_loss(outputs: torch.Tensor, labels: torch.Tensor, power: float = 1.5) -> torch.Tensor:
    """Tweedie NLL (variance power ``power``, log link) of the units, up to a constant per
    row: the half deviance ``y^(2-p)/((1-p)(2-p)) - y mu^(1-p)/(1-p) + mu^(2-p)/(2-p)``."""
    import torch

    raw, units = _present(outputs, labels)
    if len(units) == 0:
        return outputs.sum() * 0.0
    p = float(power)
    log_mean = raw[:, 0].clamp(max=_MAX_LOG_MEAN)
    fitted = -units * torch.exp((1 - p) * log_mean) / (1 - p) + torch.exp((2 - p) * log_mean) / (
        2 - p
    )
    saturated = units.pow(2 - p) / ((1 - p) * (2 - p))  # 0 for a zero week
    return (fitted + saturated).mean()


def _ziln_parameters(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from torch.nn import functional as F

    return raw[:, 0], raw[:, 1], F.softplus(raw[:, 2]).clamp(min=_MIN_SCALE)


def zero_inflated_lognormal_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ZILN NLL (Wang, Liu & Miao 2019): outputs ``(logit of P(units > 0), mu, raw sigma)``.

    Binary cross-entropy of "the week sells" plus the log-normal NLL of the units on the
    weeks that sell, averaged over every row as in the paper (``sigma = softplus(raw)``).
    """
    import torch
    from torch.nn import functional as F

    raw, units = _present(outputs, labels)
    if len(units) == 0:
        return outputs.sum() * 0.0
    logit, mu, sigma = _ziln_parameters(raw)
    positive = (units > 0).float()
    classification = F.binary_cross_entropy_with_logits(logit, positive)
    log_units = torch.log(units.clamp(min=1.0))  # units are whole numbers: > 0 means >= 1
    nll = (
        log_units
        + torch.log(sigma)
        + 0.5 * math.log(2 * math.pi)
        + 0.5 * ((log_units - mu) / sigma) ** 2
    )
    return classification + (positive * nll).mean()


def predict_from_log_mean(outputs: torch.Tensor) -> torch.Tensor:
    """``log1p(exp(log mean))`` = softplus: the log1p of the expected units, ``(B, 1)``."""
    from torch.nn import functional as F

    return F.softplus(outputs.float()[:, :1].clamp(max=_MAX_LOG_MEAN))


def predict_zero_inflated_lognormal(outputs: torch.Tensor) -> torch.Tensor:
    """``log1p(p * exp(mu + sigma^2 / 2))``, the log1p of the ZILN mean, ``(B, 1)``."""
    from torch.nn import functional as F

    logit, mu, sigma = _ziln_parameters(outputs.float())
    log_mean = F.logsigmoid(logit) + (mu + sigma.pow(2) / 2).clamp(max=_MAX_LOG_MEAN)
    return F.softplus(log_mean).unsqueeze(-1)  # log1p(exp(x)) = softplus(x)


@dataclass(frozen=True)
class LossChoice:
    """A sales loss: the head's raw width and how to read a prediction off it."""

    loss: Callable[..., torch.Tensor]
    outputs: int
    predict: Callable[[torch.Tensor], torch.Tensor]


#: ``tasks.sales.settings.loss`` -> the loss; ``mse`` is the kind's default (masked MSE on
#: the log1p target, identity prediction), so it has no entry of its own.
LOSSES: dict[str, LossChoice | None] = {
    "mse": None,
    "poisson": LossChoice(poisson_loss, 1, predict_from_log_mean),
    "tweedie": LossChoice(tweedie_loss, 1, predict_from_log_mean),
    "zero_inflated_lognormal": LossChoice(
        zero_inflated_lognormal_loss, 3, predict_zero_inflated_lognormal
    ),
}
