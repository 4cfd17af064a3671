"""A fitted ``LogisticRegression`` as arrays: coefficients, intercepts, classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from shopmtl import PriorState
from shopmtl.plugins.shared.portable import UnsupportedModel


@dataclass(frozen=True)
class Logistic:
    """``LogisticRegression``'s ``predict_proba``, from its ``coef_``, ``intercept_`` and ``classes_``.

    ``multinomial``: one softmax over the classes' scores (what scikit-learn fits for 3+
    classes by default); otherwise each class's probability is the logistic of its score
    (normalised to sum to 1 for 3+ classes: one-vs-rest), and a binary model has one score.
    """

    coef: np.ndarray  # (n_scores, n_features) float64
    intercept: np.ndarray  # (n_scores,) float64
    classes_: np.ndarray  # (n_classes,) the labels, as scikit-learn names the attribute
    multinomial: bool

    @classmethod
    def of(cls, fitted: Any) -> Logistic:
        """``fitted`` itself when it is one already, else :meth:`from_sklearn` of it."""
        return fitted if isinstance(fitted, cls) else cls.from_sklearn(fitted)

    @classmethod
    def from_sklearn(cls, model: Any) -> Logistic:
        """The arrays of a fitted ``LogisticRegression``."""
        classes = np.asarray(model.classes_)
        if classes.dtype.kind not in "iufb":
            raise UnsupportedModel(
                f"LogisticRegression with {classes.dtype} classes cannot be saved as arrays: "
                "fit it on integer class indices"
            )
        setting = getattr(model, "multi_class", "auto")  # gone in scikit-learn 1.8: always "auto"
        ovr = setting == "ovr" or (
            setting in ("auto", "deprecated", "warn")
            and (classes.size <= 2 or model.solver == "liblinear")
        )
        return cls(
            np.asarray(model.coef_, dtype=np.float64),
            np.asarray(model.intercept_, dtype=np.float64),
            classes,
            multinomial=not ovr,
        )

    def state(self) -> PriorState:
        arrays = {
            "coef": np.ascontiguousarray(self.coef),
            "intercept": np.ascontiguousarray(self.intercept),
            "classes": np.ascontiguousarray(self.classes_),
        }
        return PriorState(arrays, {"multinomial": self.multinomial})

    @classmethod
    def from_state(cls, state: PriorState) -> Logistic:
        coef, intercept = state.arrays["coef"], state.arrays["intercept"]
        if coef.ndim != 2 or intercept.shape != (coef.shape[0],):
            raise ValueError(
                f"logistic state: coef {coef.shape} and intercept {intercept.shape} do not fit"
            )
        return cls(coef, intercept, state.arrays["classes"], bool(state.meta["multinomial"]))

    def decision_function(self, x: Any) -> np.ndarray:
        """``x @ coef.T + intercept``, flattened for a binary model (as scikit-learn's)."""
        scores = np.asarray(x @ self.coef.T) + self.intercept
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict_proba(self, x: Any) -> np.ndarray:
        """``(n, n_classes)`` class probabilities."""
        scores = self.decision_function(x)
        if scores.ndim == 1:
            positive = _expit(scores)
            return np.column_stack([1 - positive, positive])
        if self.multinomial:
            scores = scores - scores.max(axis=1, keepdims=True)
            np.exp(scores, out=scores)
            return scores / scores.sum(axis=1, keepdims=True)
        probabilities = _expit(scores)
        return probabilities / probabilities.sum(axis=1, keepdims=True)


def _expit(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit  # scikit-learn's own

    return expit(x)
