"""Ranking metrics for a scored candidate list: HitRate@K and NDCG@K per positive, ties
counted at their expected value under random tie-breaking (TASKS.md, task 4).

Pure numpy/pandas; ``recommend`` scores its val/test candidates with the model and
hands them here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from shopmtl import EvalBatch

#: Ranking metrics look at the top K of each positive's candidate list.
TOP_K = 10


def ranking_metrics(
    scores: np.ndarray, query: np.ndarray, is_positive: np.ndarray, k: int = TOP_K
) -> tuple[float, float]:
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
    kept = first.merge(positives.drop_duplicates(), on=["customer_id", "stock_code"], how="inner")[
        "query"
    ]
    return ranking if len(kept) == len(first) else ranking[ranking["query"].isin(kept)]


def batch_ranking_metrics(batch: EvalBatch) -> tuple[float, float]:
    """HitRate@K and NDCG@K of ``batch``'s ranking candidates, for its evaluated positives.

    The candidates are ``extras["ranking_blocks"](split)`` scored through ``batch.score_stream``
    (hook API 1.4) where both exist, else ``extras["ranking"][split]`` through ``batch.score``;
    the two give the same values. NaN for a split without candidates (train).
    """
    return _streamed_ranking(batch) if _can_stream(batch) else _whole_ranking(batch)


def _can_stream(batch: EvalBatch) -> bool:
    """The caller scores frame by frame (hook API 1.4) and the task's data can draw its candidates so."""
    blocks = batch.extras.get("ranking_blocks")
    return (
        getattr(batch, "score_stream", None) is not None
        and blocks is not None
        and batch.split in ("val", "test")
    )


def _streamed_ranking(batch: EvalBatch) -> tuple[float, float]:
    """HitRate@10 and NDCG@10 with the candidates drawn, filtered and scored block by block: only
    their scores, queries and labels are kept, never the candidates' frame (100 rows per positive).
    The blocks concatenated are the whole frame, so the values are :func:`_whole_ranking`'s."""
    queries: list[np.ndarray] = []
    positives: list[np.ndarray] = []

    def evaluated() -> Iterator[pd.DataFrame]:
        for block in batch.extras["ranking_blocks"](batch.split):
            block = evaluated_queries(block, batch.frame)
            if len(block):
                queries.append(block["query"].to_numpy())
                positives.append(block["label"].to_numpy() == 1)
                yield block

    scores = np.asarray(batch.score_stream(evaluated()), dtype=float).reshape(-1)  # type: ignore[misc]
    if not queries:
        return float("nan"), float("nan")
    return ranking_metrics(scores, np.concatenate(queries), np.concatenate(positives))


def _whole_ranking(batch: EvalBatch) -> tuple[float, float]:
    """HitRate@10 and NDCG@10 on the whole ranking frame (``extras["ranking"][split]``); NaN without one."""
    ranking = batch.extras.get("ranking", {}).get(batch.split)
    if ranking is not None and len(ranking):
        ranking = evaluated_queries(ranking, batch.frame)
    if ranking is None or not len(ranking):
        return float("nan"), float("nan")  # a split without ranking candidates (train) has none
    scores = np.asarray(batch.score(ranking), dtype=float).reshape(-1)
    return ranking_metrics(scores, ranking["query"].to_numpy(), ranking["label"].to_numpy() == 1)
