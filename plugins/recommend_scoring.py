"""The recommend task's metrics (AUC, log loss, HR@10, NDCG@10), its baselines and decoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
from shopmtl import (
    EvalBatch,
    TaskData,
    decode_by_kind,
)
from shopmtl.plugins.recommend_peer import fit_gradient_boosting
from shopmtl.plugins.shared.baselines import Predictor, baseline_metrics
from shopmtl.plugins.shared.ranking import (
    batch_ranking_metrics,
)

#: Probabilities are clipped to [EPS, 1 - EPS] before the log loss.
EPS = 1e-6


def recommend_metrics(batch: EvalBatch) -> dict[str, float]:
    """ROC-AUC and log loss on the split's rows; HitRate@10 and NDCG@10 on its ranking
    candidates (``extras["ranking"][split]``, scored through ``batch.score``; NaN for a
    split without them), for the positives among the evaluated rows (all of them unless
    the split was subsampled: :func:`evaluated_queries`)."""
    from sklearn.metrics import log_loss, roc_auc_score

    y = np.asarray(batch.labels, dtype=float).reshape(-1)
    p = np.asarray(batch.predictions, dtype=float).reshape(-1)
    present = ~np.isnan(y)
    y, p = y[present].astype(int), np.clip(p[present], EPS, 1 - EPS)
    both = len(np.unique(y)) == 2
    out = {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else float("nan"),
    }
    hit_rate, ndcg = batch_ranking_metrics(batch)
    return {**out, "hit_rate_at_10": hit_rate, "ndcg_at_10": ndcg}


def decode_recommend(predictions: np.ndarray) -> pd.DataFrame:
    """``probability`` that the customer buys the product."""
    return decode_by_kind("binary", predictions, ())


def recommend_baselines(
    data: TaskData, split: str, *, classical: bool = True
) -> dict[str, dict[str, float]]:
    """TASKS.md's baselines on ``split``: popularity, "bought before by this customer" and,
    when ``classical``, gradient boosting on the numeric inputs plus the TF-IDF cosine of
    history and candidate description.

    The one-feature baselines become probabilities through a logistic fit on train: a
    monotone map, so AUC and the ranking metrics are those of the raw score, and the log
    loss is meaningful. Popularity is fitted as the raw count of buyers, as TASKS.md names
    it (on its log the train slope comes out slightly negative, which would rank the
    *least* popular first); "bought before" is the 0/1 indicator.
    """
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    # One thread per native pool: OpenMP/BLAS threads spinning on busy cores (beside a
    # training job) made these fits 5-30x slower in our measurements; alone, it costs ~1 s.
    with threadpool_limits(1):
        train = data["train"]
        predictors: dict[str, Predictor] = {
            "popularity": _fit_one_feature(train, _popularity),
            "bought_before": _fit_one_feature(train, _bought_before),
        }
        if classical:
            predictors["gradient_boosting"] = fit_gradient_boosting(train).probabilities
        return baseline_metrics(predictors, data, split, ["label"], recommend_metrics)


def _popularity(frame: pd.DataFrame) -> np.ndarray:
    """The candidate's distinct buyers before the cutoff (undoing the feature's log1p)."""
    return np.rint(np.expm1(frame["log_popularity"].to_numpy(dtype=float)))


def _bought_before(frame: pd.DataFrame) -> np.ndarray:
    """1.0 when the customer bought the candidate before the cutoff."""
    return (frame["log_bought_before"].to_numpy(dtype=float) > 0).astype(float)


def _fit_one_feature(train: pd.DataFrame, feature: Predictor) -> Predictor:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(
        feature(train).reshape(-1, 1), train["label"].to_numpy(dtype=int)
    )
    return lambda f: model.predict_proba(feature(f).reshape(-1, 1))[:, 1]
