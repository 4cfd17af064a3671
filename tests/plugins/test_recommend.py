"""The recommend task's dataset, ranking and baselines against TASKS.md and an independent recomputation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from builtin_reference import CUTOFF, SPLITS, split_of
from shopmtl import EvalBatch, TaskData
from shopmtl.plugins import recommend

# --- recommend ------------------------------------------------------------------------------


def test_recommend_reference_counts(datasets: dict[str, TaskData]) -> None:
    data = datasets["recommend"]
    assert [int((data[s]["label"] == 1).sum()) for s in SPLITS] == [66_821, 9_111, 8_627]
    assert [int((data[s]["label"] == 0).sum()) for s in SPLITS] == [260_593, 36_444, 33_561]
    assert len(data.extras["pool"]) == 3_388


def test_recommend_matches_an_independent_recount(
    datasets: dict[str, TaskData],
    pool: pd.Series,
    positives: dict[int, list[str]],
    people: pd.DataFrame,
) -> None:
    data = datasets["recommend"]
    assert data.extras["pool"]["stock_code"].tolist() == pool.index.tolist()
    assert data.extras["pool"]["popularity"].tolist() == pool.tolist()
    for s in SPLITS:
        mine = {c: p for c, p in positives.items() if split_of(str(c)) == s}
        frame = data[s]
        assert int(frame["label"].sum()) == sum(map(len, mine.values()))
        assert int((frame["label"] == 0).sum()) == sum(
            min(4 * len(p), len(pool) - len(p)) for p in mine.values()
        )
        got = (
            frame[frame["label"] == 1].groupby("customer_id")["stock_code"].apply(sorted).to_dict()
        )
        assert got == {c: p for c, p in mine.items() if p}
    frame = pd.concat([data[s] for s in SPLITS])
    negatives = frame[frame["label"] == 0]
    assert not any(
        code in set(positives[c])
        for c, code in zip(negatives["customer_id"], negatives["stock_code"])
    )

    # Inputs of a sample of rows, recomputed.
    before = people[people["InvoiceDate"] < CUTOFF]
    invoices = before.groupby(["CustomerID", "StockCode"])["InvoiceNo"].nunique()
    products = before.groupby("CustomerID")["StockCode"].nunique()
    for _, row in frame.sample(300, random_state=0).iterrows():
        c, code = row["customer_id"], row["stock_code"]
        assert row["log_popularity"] == pytest.approx(math.log1p(pool[code]))
        assert row["log_bought_before"] == pytest.approx(math.log1p(invoices.get((c, code), 0)))
        assert row["log_history_size"] == pytest.approx(math.log1p(products[c]))


def test_recommend_negatives_follow_the_seeded_stream(
    datasets: dict[str, TaskData], pool: pd.Series, positives: dict[int, list[str]]
) -> None:
    frame = pd.concat([datasets["recommend"][s] for s in SPLITS])
    rng = np.random.default_rng(0)
    codes = pool.index.to_numpy()
    for customer in list(positives)[:40]:  # the stream is sequential: the first customers suffice
        own = set(positives[customer])
        candidates = np.array([c for c in codes if c not in own])
        popularity = pool[candidates].to_numpy()
        size = min(4 * len(own), len(candidates))
        drawn = rng.choice(candidates, size=size, replace=False, p=popularity / popularity.sum())
        mine = frame[(frame["customer_id"] == customer) & (frame["label"] == 0)]["stock_code"]
        assert sorted(mine) == sorted(drawn), customer


def test_recommend_ranking_candidates(
    datasets: dict[str, TaskData], pool: pd.Series, positives: dict[int, list[str]]
) -> None:
    ranking = datasets["recommend"].extras["ranking"]
    assert set(ranking) == {"val", "test"}
    for split, n_positives in (("val", 9_111), ("test", 8_627)):
        frame = ranking[split]
        assert set(recommend.RECOMMEND.columns) <= set(frame.columns)
        assert frame["query"].nunique() == n_positives
        assert (frame.groupby("query").size() == 100).all()
        assert (frame.groupby("query")["label"].sum() == 1).all()
        assert (frame.groupby("query")["stock_code"].nunique() == 100).all()
        assert frame.groupby("query").head(1)["label"].eq(1).all()

        # The first positives, redrawn with an independent loop on a fresh default_rng(1).
        rng = np.random.default_rng(1)
        codes = pool.index.to_numpy()
        expected = []
        for customer in [c for c in positives if split_of(str(c)) == split]:
            own = set(positives[customer])
            candidates = np.array([c for c in codes if c not in own])
            popularity = pool[candidates].to_numpy()
            for positive in positives[customer]:
                drawn = rng.choice(
                    candidates, size=99, replace=False, p=popularity / popularity.sum()
                )
                expected.append((customer, positive, list(drawn)))
            if len(expected) >= 30:
                break
        for query, (customer, positive, drawn) in enumerate(expected):
            rows = frame[frame["query"] == query]
            assert rows["customer_id"].eq(customer).all()
            assert rows["stock_code"].iloc[0] == positive
            assert rows["stock_code"].iloc[1:].tolist() == drawn


def test_recommend_baselines_reproduce_the_reference(test_baselines: dict[str, dict]) -> None:
    got = test_baselines["recommend"]
    keys = ("auc", "log_loss", "hit_rate_at_10", "ndcg_at_10")
    for name, reference in (
        ("popularity", (0.524, 0.507, 0.118, 0.054)),
        ("bought_before", (0.661, 0.447, 0.343, 0.187)),
        ("gradient_boosting", (0.767, 0.415, 0.451, 0.270)),
    ):
        assert tuple(got[name][k] for k in keys) == pytest.approx(reference, abs=0.005), name


def brute_force_ranking(scores: list[float], positive: int, k: int) -> tuple[float, float]:
    """Average HR@k / NDCG@k over every order random tie-breaking can produce."""
    hits = gains = 0.0
    orders = [
        o
        for o in itertools.permutations(range(len(scores)))
        if all(scores[a] >= scores[b] for a, b in zip(o, o[1:]))
    ]
    for order in orders:
        rank = order.index(positive) + 1
        hits += rank <= k
        gains += 1 / math.log2(rank + 1) if rank <= k else 0.0
    return hits / len(orders), gains / len(orders)


def test_ranking_metrics_count_ties_at_their_expected_value() -> None:
    rng = np.random.default_rng(7)
    cases = [
        [0.5, 0.5, 0.5, 0.5, 0.5],
        [0.3, 0.9, 0.3, 0.3, 0.1, 0.3],
        [0.9, 0.1, 0.2],
        [0.2, 0.9, 0.9, 0.8],
    ]
    cases += [list(rng.integers(0, 3, size=6) / 2) for _ in range(6)]
    for k in (1, 2, 3):
        scores, query, positive, expected = [], [], [], []
        for q, case in enumerate(cases):
            scores += case
            query += [q] * len(case)
            positive += [True] + [False] * (len(case) - 1)
            expected.append(brute_force_ranking(case, 0, k))
        hit_rate, ndcg = recommend.ranking_metrics(
            np.array(scores), np.array(query), np.array(positive), k=k
        )
        assert hit_rate == pytest.approx(np.mean([e[0] for e in expected]))
        assert ndcg == pytest.approx(np.mean([e[1] for e in expected]))


def test_recommend_metrics_score_the_ranking_candidates(datasets: dict[str, TaskData]) -> None:
    data = datasets["recommend"]
    frame = data["val"]

    def batch(score) -> EvalBatch:
        return EvalBatch(
            "val", frame, score(frame), frame[["label"]].to_numpy(), score, data.extras
        )

    perfect = recommend.recommend_metrics(batch(lambda f: f[["label"]].to_numpy(dtype=float)))
    assert (perfect["auc"], perfect["hit_rate_at_10"], perfect["ndcg_at_10"]) == (1.0, 1.0, 1.0)
    assert perfect["log_loss"] == pytest.approx(1e-6, abs=1e-5)
    constant = recommend.recommend_metrics(batch(lambda f: np.full((len(f), 1), 0.5)))
    assert constant["auc"] == 0.5
    assert constant["hit_rate_at_10"] == pytest.approx(0.1)
    assert constant["ndcg_at_10"] == pytest.approx(
        sum(1 / math.log2(r + 1) for r in range(1, 11)) / 100
    )
    assert set(perfect) == set(recommend.RECOMMEND.metric_directions)
    train = data["train"].head(50)
    no_ranking = recommend.recommend_metrics(
        EvalBatch(
            "train",
            train,
            train[["label"]].to_numpy(),
            train[["label"]].to_numpy(),
            lambda f: None,
            data.extras,
        )
    )
    assert set(no_ranking) == set(perfect) and math.isnan(no_ranking["hit_rate_at_10"])

    # A subsampled split (max_eval_examples) ranks only the positives among its rows.
    ranking = data.extras["ranking"]["val"]
    assert recommend.evaluated_queries(ranking, frame) is ranking  # the full split: every query
    sample = frame.sample(n=200, random_state=0)
    kept = recommend.evaluated_queries(ranking, sample)
    firsts = kept.groupby("query").head(1)
    assert (firsts["label"] == 1).all()
    assert set(zip(firsts["customer_id"], firsts["stock_code"])) == set(
        zip(*sample.loc[sample["label"] == 1, ["customer_id", "stock_code"]].to_numpy().T)
    )
    assert (
        kept.groupby("query")
        .size()
        .eq(ranking.groupby("query").size().loc[firsts["query"]].to_numpy())
        .all()
    )
    scored: list[int] = []
    recommend.recommend_metrics(
        EvalBatch(
            "val",
            sample,
            sample[["label"]].to_numpy(dtype=float),
            sample[["label"]].to_numpy(),
            lambda f: scored.append(len(f)) or f[["label"]].to_numpy(dtype=float),
            data.extras,
        )
    )
    assert scored == [len(kept)] and len(kept) < len(ranking) / 10
    assert recommend.decode_recommend(np.array([[0.25]]))["probability"].tolist() == [0.25]
