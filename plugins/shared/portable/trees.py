"""A fitted ``HistGradientBoostingRegressor``/``Classifier`` as node arrays.

Each tree is scikit-learn's own node table (``_predictors[i][j].nodes``): per node the
feature it splits on, the threshold, where a missing value goes, the two children, and the
leaf value (already scaled by the learning rate, as scikit-learn stores it). Trees are
concatenated; ``roots`` holds each tree's first node and children are absolute node numbers.
A prediction is the baseline plus the sum of each tree's leaf, in scikit-learn's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from shopmtl import PriorState
from shopmtl.plugins.shared.portable import UnsupportedModel

#: Node arrays, with their saved dtype.
_NODES = {
    "feature": np.int64,
    "threshold": np.float64,
    "missing_left": np.bool_,
    "left": np.int64,
    "right": np.int64,
    "value": np.float64,
    "is_leaf": np.bool_,
}


@dataclass(frozen=True)
class BoostedTrees:
    """``predict`` (regression) or ``predict_proba`` (binary) of histogram gradient boosting."""

    nodes: dict[str, np.ndarray]  # _NODES' arrays, one entry per node of every tree
    roots: np.ndarray  # (n_iterations, n_trees_per_iteration) first node of each tree
    baseline: np.ndarray  # (n_trees_per_iteration,) the raw prediction before any tree
    kind: str  # "regression" (identity link, squared error) or "binary" (logistic link)
    learning_rate: float  # recorded for reference: the leaf values already include it

    @classmethod
    def of(cls, fitted: Any) -> BoostedTrees:
        """``fitted`` itself when it is one already, else :meth:`from_sklearn` of it."""
        return fitted if isinstance(fitted, cls) else cls.from_sklearn(fitted)

    @classmethod
    def from_sklearn(cls, model: Any) -> BoostedTrees:
        """The trees of a fitted model; refuses categorical splits and losses it does not reproduce."""
        kind = _kind(model)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in _NODES}
        roots = np.zeros((len(model._predictors), len(model._predictors[0])), dtype=np.int64)
        start = 0
        for i, iteration in enumerate(model._predictors):  # scikit-learn keeps no public node table
            for j, predictor in enumerate(iteration):
                table = predictor.nodes
                if table["is_categorical"].any():
                    raise UnsupportedModel(
                        "gradient boosting with categorical splits cannot be saved as arrays"
                    )
                roots[i, j] = start
                columns = {
                    "feature": table["feature_idx"],
                    "threshold": table["num_threshold"],
                    "missing_left": table["missing_go_to_left"],
                    "left": table["left"] + start,
                    "right": table["right"] + start,
                    "value": table["value"],
                    "is_leaf": table["is_leaf"],
                }
                for name, values in columns.items():
                    parts[name].append(np.asarray(values, dtype=_NODES[name]))
                start += len(table)
        nodes = {name: np.concatenate(values) for name, values in parts.items()}
        baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
        return cls(nodes, roots, baseline, kind, float(model.learning_rate))

    def state(self) -> PriorState:
        arrays = {
            f"nodes.{name}": np.ascontiguousarray(values) for name, values in self.nodes.items()
        }
        arrays |= {"roots": self.roots, "baseline": self.baseline}
        return PriorState(arrays, {"kind": self.kind, "learning_rate": self.learning_rate})

    @classmethod
    def from_state(cls, state: PriorState) -> BoostedTrees:
        nodes = {
            name: np.asarray(state.arrays[f"nodes.{name}"], dtype=dtype)
            for name, dtype in _NODES.items()
        }
        count = len(nodes["value"])
        if any(len(values) != count for values in nodes.values()):
            raise ValueError("gradient boosting state: node arrays of different lengths")
        roots = np.asarray(state.arrays["roots"], dtype=np.int64)
        links = np.concatenate(
            [nodes["left"][~nodes["is_leaf"]], nodes["right"][~nodes["is_leaf"]], roots.ravel()]
        )
        if links.size and (links.min() < 0 or links.max() >= count):
            raise ValueError(
                "gradient boosting state: a child or root points outside the node table"
            )
        kind = str(state.meta["kind"])
        if kind not in ("regression", "binary"):
            raise ValueError(f"gradient boosting state: unknown kind {kind!r}")
        return cls(
            nodes,
            roots,
            np.asarray(state.arrays["baseline"], dtype=np.float64),
            kind,
            float(state.meta["learning_rate"]),
        )

    def raw(self, x: np.ndarray) -> np.ndarray:
        """``(n, n_trees_per_iteration)`` raw predictions: baseline plus every tree's leaf."""
        x = np.asarray(x, dtype=np.float64)
        out = np.zeros((len(x), self.roots.shape[1]))
        out += self.baseline
        for iteration in self.roots:
            for k, root in enumerate(iteration):
                out[:, k] += self._leaf_values(x, int(root))
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Regression: ``(n,)`` predictions."""
        if self.kind != "regression":
            raise TypeError("predict of a classifier's trees: use predict_proba")
        return self.raw(x)[:, 0]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Binary classification: ``(n, 2)`` probabilities of class 0 and 1."""
        if self.kind != "binary":
            raise TypeError("predict_proba of a regressor's trees: use predict")
        from scipy.special import expit  # scikit-learn's own

        positive = expit(self.raw(x)[:, 0])
        return np.column_stack([1 - positive, positive])

    def _leaf_values(self, x: np.ndarray, root: int) -> np.ndarray:
        """Each row's leaf value in the tree at ``root``: all rows descend a level at a time."""
        nodes = self.nodes
        values = np.empty(len(x))
        rows = np.arange(len(x))
        at = np.full(len(x), root, dtype=np.int64)
        while rows.size:
            leaf = nodes["is_leaf"][at]
            if leaf.any():  # rows that reached a leaf drop out, so each level reads fewer rows
                values[rows[leaf]] = nodes["value"][at[leaf]]
                rows, at = rows[~leaf], at[~leaf]
            seen = x[rows, nodes["feature"][at]]
            # scikit-learn: a missing value follows missing_go_to_left, any other goes left when <= threshold
            left = np.where(
                np.isnan(seen), nodes["missing_left"][at], seen <= nodes["threshold"][at]
            )
            at = np.where(left, nodes["left"][at], nodes["right"][at])
        return values


def _kind(model: Any) -> str:
    loss = type(model._loss).__name__
    if loss == "HalfSquaredError":
        return "regression"
    if loss == "HalfBinomialLoss":
        return "binary"
    raise UnsupportedModel(
        f"gradient boosting with the {loss} loss cannot be saved as arrays "
        "(squared error and binary log-loss can)"
    )
