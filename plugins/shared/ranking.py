"""Ranking metrics for a scored candidate list: HitRate@K and NDCG@K per positive, ties
counted at their expected value under random tie-breaking (TASKS.md, task 4).

Pure numpy/pandas; ``recommend`` scores its val/test candidates with the model and
hands them here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Ranking metrics look at the top K of each positive's candidate list.
TOP_K = 10


def ranking_metrics(scores: np.ndarray, query: np.ndarray, is_positive: np.ndarray, k: int = TOP_K) -> tuple[float, float]:
    """HitRate@k and NDCG@k averaged over queries, ties at their expected value.

    Each query has one positive. With ``g`` negatives scored above it and ``e`` tied with
    it, its rank is uniform on ``g+1 ... g+e+1`` under random tie-breaking, so
    ``HR = P(rank <= k)`` and ``NDCG = E[1/log2(rank+1); rank <= k]``.

    Args:
        scores: one score per candidate row.
        query: the query (positive) each row belongs to, ``0 ... n_queries-1``.
        is_positive: ``True`` on each query's positive row.

    Returns:
        ``(hit_rate, ndcg)`` averaged over the queries that have a positive (NaN if none).
    """
    scores = np.asarray(scores, dtype=float).reshape(-1)
    query = np.asarray(query, dtype=np.int64).reshape(-1)
    is_positive = np.asarray(is_positive, dtype=bool).reshape(-1)
    n_queries = int(query.max()) + 1 if len(query) else 0
    if n_queries == 0:
        return float("nan"), float("nan")
    positive_score = np.full(n_queries, np.nan)
    positive_score[query[is_positive]] = scores[is_positive]
    negative = ~is_positive
    threshold = positive_score[query[negative]]
    above = np.bincount(query[negative], weights=scores[negative] > threshold, minlength=n_queries)
    tied = np.bincount(query[negative], weights=scores[negative] == threshold, minlength=n_queries)

    # cumulative[r] = sum of 1/log2(i+1) for ranks i = 1..r (cumulative[0] = 0), capped at k.
    cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    low = np.minimum(above, k).astype(int)  # ranks <= low are taken by higher negatives
    high = np.minimum(above + tied + 1, k).astype(int)  # last rank the positive can take within k
    hits = np.maximum(high - low, 0) / (tied + 1)
    gains = np.where(high > low, cumulative[high] - cumulative[low], 0.0) / (tied + 1)
    has_positive = ~np.isnan(positive_score)
    if not has_positive.any():
        return float("nan"), float("nan")
    return float(hits[has_positive].mean()), float(gains[has_positive].mean())


def evaluated_queries(ranking: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The ranking rows whose query's positive is a positive row of ``frame``.

    On a full split that is every query; when ``max_eval_examples`` subsamples the split,
    the ranking shrinks with it, so a capped evaluation stays cheap.
    """
    positives = frame.loc[frame["label"] == 1, ["customer_id", "stock_code"]]
    first = ranking.groupby("query", sort=False).head(1)  # each query's first row is its positive
    kept = first.merge(positives.drop_duplicates(), on=["customer_id", "stock_code"], how="inner")["query"]
    return ranking if len(kept) == len(first) else ranking[ranking["query"].isin(kept)]
