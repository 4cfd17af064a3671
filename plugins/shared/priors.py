"""Turning a classical model's probabilities into the raw outputs a head adds them to."""

from __future__ import annotations

import numpy as np

#: Probabilities are kept this far from 0 and 1, so their logs stay finite.
EPSILON = 1e-6


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Class logits for a multiclass head: the log of each (clipped) probability."""
    return np.log(np.clip(np.asarray(probabilities, dtype=float), EPSILON, 1.0))


def logits(probabilities: np.ndarray) -> np.ndarray:
    """Logits for a binary or multilabel head: ``log(p / (1 - p))`` of each (clipped) probability."""
    p = np.clip(np.asarray(probabilities, dtype=float), EPSILON, 1.0 - EPSILON)
    return np.log(p) - np.log1p(-p)
