"""``recommend``: binary "will this customer buy this product" (TASKS.md, task 4).

Customers and history text as in ``user_profile``. Positives: each distinct (customer,
pool product) bought on/after the cutoff; negatives: 4 per positive, drawn by popularity
from the pool minus the customer's positives on one ``default_rng(0)`` stream. Val and test
also get ranking candidates: each positive with 99 popularity-drawn negatives, scored by
the model at evaluation for HitRate@10 and NDCG@10. Split by customer key.

``TaskData.extras`` layout::

    {"pool": DataFrame[stock_code, description, popularity],   # sorted by stock_code
     "ranking": {"val": DataFrame, "test": DataFrame},          # drawn on first read, then kept
     "ranking_blocks": split -> Iterator[DataFrame]}             # the same rows, drawn block by block

A ranking frame has the split frame's columns plus ``query``: the index of the positive
its row is ranked with; each query's first row is the positive (``label`` 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from shopmtl import (
    BuildContext,
    Prior,
    Register,
    TaskData,
    TaskSpec,
    hookimpl,
)
from shopmtl.plugins.recommend_peer import (
    NUMERIC,
    GradientBoostingRanker,
    fit_gradient_boosting,
    fit_gradient_boosting_prior,
    ranker_from_state,
    ranker_state,
)

# Metrics, baselines and decoding live beside this module; importable from here too.
from shopmtl.plugins.recommend_scoring import (  # noqa: F401 -- re-exported
    decode_recommend,
    recommend_baselines,
    recommend_metrics,
)
from shopmtl.plugins.shared import retail
from shopmtl.plugins.shared.customers import query_profiles
from shopmtl.plugins.shared.lazy import LazyMapping
from shopmtl.plugins.shared.priors import logits
from shopmtl.plugins.shared.ranking import (
    TOP_K,
    evaluated_queries,
    ranking_metrics,
)

#: A baseline: rows -> probabilities.


@dataclass(frozen=True)
class RecommendSettings:
    """Settings of ``recommend``; the defaults are TASKS.md's (the reference figures need them)."""

    #: History is everything before this instant; positives are bought on/after it.
    cutoff: str = "2011-09-01 00:00"
    #: Negatives drawn per positive (fewer when the customer's candidates run out).
    negatives_per_positive: int = 4
    #: Seed of the one stream that draws every customer's negatives. Not the run's seed:
    #: the rows must not change from run to run.
    negative_seed: int = 0
    #: Negatives each val/test positive is ranked against.
    ranking_negatives: int = 99
    #: Seed of the ranking candidates' stream, fresh for each split.
    ranking_seed: int = 1

    def __post_init__(self) -> None:
        pd.Timestamp(self.cutoff)  # a malformed date fails here, when the config is read
        if self.negatives_per_positive < 1 or self.ranking_negatives < 1:
            raise ValueError(
                "recommend settings: negatives_per_positive and ranking_negatives must be >= 1"
            )


@dataclass(frozen=True)
class _Universe:
    """Everything the rows are drawn from, in index space (positions, not ids)."""

    profiles: pd.DataFrame  # customer_id ascending, history, country
    pool: pd.DataFrame  # stock_code ascending, description, popularity
    positives: list[np.ndarray]  # per profile row: sorted pool positions bought on/after the cutoff
    bought_before: (
        pd.Series
    )  # index pair key (customer row * n_pool + pool position) -> distinct invoices
    history_size: np.ndarray  # per profile row: distinct products bought before the cutoff

    def pair_rows(
        self, customer: np.ndarray, product: np.ndarray, label: np.ndarray
    ) -> pd.DataFrame:
        """The task's frame for (profile row, pool position, label) triples."""
        pop = self.pool["popularity"].to_numpy(dtype=float)
        key = customer.astype(np.int64) * len(self.pool) + product
        invoices = self.bought_before.reindex(key).fillna(0).to_numpy(dtype=float)
        return pd.DataFrame(
            {
                "customer_id": self.profiles["customer_id"].to_numpy()[customer],
                "stock_code": self.pool["stock_code"].to_numpy()[product],
                # object dtype: rows share the customer's one history string instead of copying it
                "history": pd.Series(
                    self.profiles["history"].to_numpy(dtype=object)[customer], dtype=object
                ),
                "description": pd.Series(
                    self.pool["description"].to_numpy(dtype=object)[product], dtype=object
                ),
                "log_popularity": np.log1p(pop[product]),
                "log_bought_before": np.log1p(invoices),
                "log_history_size": np.log1p(self.history_size[customer].astype(float)),
                "label": label.astype(float),
            }
        )

    def candidates(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Pool positions a customer's negatives come from, and their draw probabilities."""
        allowed = np.ones(len(self.pool), dtype=bool)
        allowed[self.positives[row]] = False
        candidates = np.flatnonzero(allowed)
        popularity = self.pool["popularity"].to_numpy()[candidates]
        return candidates, popularity / popularity.sum()


def build_recommend(ctx: BuildContext) -> TaskData:
    """Customer-product rows of the context's file, split by customer key, with ranking candidates.

    The ranking candidates (``extras["ranking"]``, ``extras["ranking_blocks"]``) are drawn when
    first read (an evaluation), each split on its own fresh stream, so when they are drawn does
    not change them; the draws are kept as compact arrays, their frames built when asked for.
    """
    settings: RecommendSettings = ctx.settings or RecommendSettings()
    universe = _universe(ctx, pd.Timestamp(settings.cutoff))
    customer, product, label = _draw_rows(universe, settings)
    split = retail.split_customers(universe.profiles["customer_id"]).to_numpy()
    row_split = split[customer]
    splits = {}
    for s in ("train", "val", "test"):  # split by split: the whole frame never exists at once
        keep = row_split == s
        splits[s] = universe.pair_rows(customer[keep], product[keep], label[keep])
    draws = LazyMapping(
        ("val", "test"), lambda s: _draw_ranking(universe, settings, np.flatnonzero(split == s))
    )
    ranking = LazyMapping(("val", "test"), lambda s: _ranking_rows(universe, draws[s]))
    blocks = lambda s: _ranking_blocks(universe, draws[s])  # noqa: E731 -- one line
    return TaskData(
        splits=splits,
        extras={"pool": universe.pool, "ranking": ranking, "ranking_blocks": blocks},
        sources=retail.transactions_files(ctx.data_path),
    )


def _universe(ctx: BuildContext, cutoff: pd.Timestamp) -> _Universe:
    """Customers, pool and purchases, aggregated by DuckDB (profile rows and pool positions, not ids)."""
    con = retail.open_transactions(ctx.data_path, ctx.column_map)
    at = {"cutoff": cutoff.to_pydatetime()}
    try:
        profiles = query_profiles(con, cutoff)
        # Pool: every product with a known buyer before the cutoff (any customer, not only
        # the task's), sorted by StockCode; popularity = its distinct buyers.
        con.execute(
            """
            CREATE TEMP TABLE pool AS SELECT *, row_number() OVER (ORDER BY stock_code) - 1 AS position FROM (
                SELECT stock_code, any_value(product_description) AS description,
                       count(DISTINCT customer_id) AS popularity
                FROM customers WHERE invoice_date < $cutoff GROUP BY stock_code)
        """,
            at,
        )
        con.execute(
            "CREATE TEMP TABLE profile_rows AS "
            "SELECT customer_id, row_number() OVER (ORDER BY customer_id) - 1 AS row FROM profiles"
        )
        pool = con.execute(
            "SELECT stock_code, description, popularity FROM pool ORDER BY position"
        ).df()
        mine = "FROM customers JOIN profile_rows USING (customer_id) JOIN pool USING (stock_code)"
        # Positives: distinct (customer, pool product) on/after the cutoff. Products first sold
        # after it are out: they could never be negatives, so they would leak the label.
        pairs = con.execute(
            f"SELECT DISTINCT row, position {mine} WHERE invoice_date >= $cutoff "
            "ORDER BY row, position",
            at,
        ).df()
        # Inputs: distinct invoices per (customer, product) before the cutoff, distinct products per customer.
        invoices = con.execute(
            f"SELECT row * {len(pool)} + position AS key, count(DISTINCT invoice) AS n {mine} "
            "WHERE invoice_date < $cutoff GROUP BY key ORDER BY key",
            at,
        ).df()
        sizes = con.execute(
            f"SELECT row, count(DISTINCT stock_code) AS n {mine} WHERE invoice_date < $cutoff "
            "GROUP BY row",
            at,
        ).df()
    finally:
        con.close()
    pool["popularity"] = pool["popularity"].to_numpy(dtype=np.int64)
    starts = np.searchsorted(pairs["row"].to_numpy(), np.arange(len(profiles) + 1))
    position = pairs["position"].to_numpy(dtype=np.int64)
    positives = [position[starts[i] : starts[i + 1]] for i in range(len(profiles))]
    bought_before = pd.Series(
        invoices["n"].to_numpy(dtype=np.int64), index=invoices["key"].to_numpy(dtype=np.int64)
    )
    history_size = np.zeros(len(profiles), dtype=np.int64)
    history_size[sizes["row"].to_numpy(dtype=np.int64)] = sizes["n"].to_numpy(dtype=np.int64)
    return _Universe(profiles, pool, positives, bought_before, history_size)


def _draw_rows(
    universe: _Universe, settings: RecommendSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positives and negatives as (profile row, pool position, label) arrays, customer by customer."""
    rng = np.random.default_rng(settings.negative_seed)
    customer, product, label = [], [], []
    # TASKS.md fixes the stream: one draw per customer in ascending id (size 0 included),
    # so this loop over ~2,000 customers cannot be vectorised without changing the rows.
    for row, positives in enumerate(universe.positives):
        candidates, p = universe.candidates(row)
        size = min(settings.negatives_per_positive * len(positives), len(candidates))
        # A size-0 draw consumes nothing from the stream; only a customer who bought the
        # whole pool (no candidates, where numpy would reject p) skips it.
        negatives = (
            rng.choice(candidates, size=size, replace=False, p=p) if len(candidates) else candidates
        )
        chosen = np.concatenate([positives, negatives])
        customer.append(np.full(len(chosen), row))
        product.append(chosen)
        label.append(np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))]))
    customer_a, product_a, label_a = (np.concatenate(x) for x in (customer, product, label))
    order = np.lexsort((product_a, customer_a))  # rows by (customer, StockCode)
    return customer_a[order], product_a[order].astype(np.int64), label_a[order]


@dataclass(frozen=True)
class _Draws:
    """A split's ranking candidates, drawn once, as 13 bytes a row (their frame takes ~80)."""

    customer: np.ndarray  # int32 profile row
    product: np.ndarray  # int32 pool position
    query: np.ndarray  # int32, ascending: the positive each row is ranked with
    positive: np.ndarray  # bool: each query's first row


def _draw_ranking(universe: _Universe, settings: RecommendSettings, rows: np.ndarray) -> _Draws:
    """Each positive of these customers with its ranking negatives, on a fresh seeded stream."""
    rng = np.random.default_rng(settings.ranking_seed)
    customer, product, sizes = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)], []
    for row in rows:  # ascending customer id, then StockCode (pool order): TASKS.md's order
        if len(universe.positives[row]) == 0:
            continue
        candidates, p = universe.candidates(row)
        size = min(settings.ranking_negatives, len(candidates))
        for positive in universe.positives[row]:
            negatives = rng.choice(candidates, size=size, replace=False, p=p)
            customer.append(np.full(size + 1, row, dtype=np.int32))
            product.append(np.concatenate([[positive], negatives]).astype(np.int32))
            sizes.append(size + 1)
    counts = np.asarray(sizes, dtype=np.int64)
    positive = np.zeros(int(counts.sum()), dtype=bool)
    positive[np.cumsum(counts) - counts] = True
    query = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    return _Draws(np.concatenate(customer), np.concatenate(product), query, positive)


def _ranking_rows(
    universe: _Universe, draws: _Draws, start: int = 0, stop: int | None = None
) -> pd.DataFrame:
    """The ranking frame of rows ``start:stop`` of ``draws``: the split frame's columns plus ``query``."""
    part = slice(start, stop)
    return universe.pair_rows(
        draws.customer[part].astype(np.int64),
        draws.product[part].astype(np.int64),
        draws.positive[part].astype(float),
    ).assign(query=draws.query[part].astype(np.int64))


_BLOCK_ROWS = (
    1 << 18
)  # rows per block of ranking candidates (cut at the next query: a block may run over)


def _ranking_blocks(universe: _Universe, draws: _Draws) -> Iterator[pd.DataFrame]:
    """The ranking frame in blocks of whole queries: concatenated, they are the whole frame."""
    firsts = np.flatnonzero(draws.positive)
    cuts = np.searchsorted(firsts, np.arange(_BLOCK_ROWS, len(draws.query), _BLOCK_ROWS))
    bounds = np.unique(np.concatenate([[0], firsts[cuts[cuts < len(firsts)]], [len(draws.query)]]))
    for start, stop in zip(bounds[:-1], bounds[1:]):
        yield _ranking_rows(universe, draws, int(start), int(stop))


METRIC_DIRECTIONS: dict[str, str] = {
    "auc": "max",
    "log_loss": "min",
    "hit_rate_at_10": "max",
    "ndcg_at_10": "max",
}


#: The classical models a run may start recommend's head from (``tasks.recommend.prior``).
PRIORS = {
    "gradient_boosting": Prior(
        description="gradient boosting on popularity, bought-before, history size and TF-IDF cosine: the peer",
        fit=fit_gradient_boosting_prior,
        predict=lambda fitted, frame: logits(fitted.probabilities(frame)),
        state=ranker_state,
        from_state=ranker_from_state,
        group="customer_id",  # a customer's candidates share a fold: their history is one text
    ),
}


RECOMMEND = TaskSpec(
    name="recommend",
    kind="binary",
    description="Whether a customer buys a product after the cutoff, from their history and its description",
    text="history",
    text_pair="description",
    labels=("label",),
    build_dataset=build_recommend,
    metrics=recommend_metrics,
    metric_directions=METRIC_DIRECTIONS,
    primary_metric="auc",
    numeric=NUMERIC,
    keys=("customer_id", "stock_code"),
    settings=RecommendSettings,
    decode=decode_recommend,
    baselines=recommend_baselines,
    priors=PRIORS,
)


@hookimpl
def register_tasks(register: Register) -> None:
    """Register the ``recommend`` task."""
    register(RECOMMEND)


__all__ = [
    "NUMERIC",
    "PRIORS",
    "RECOMMEND",
    "GradientBoostingRanker",
    "RecommendSettings",
    "build_recommend",
    "decode_recommend",
    "TOP_K",
    "evaluated_queries",
    "fit_gradient_boosting",
    "ranking_metrics",
    "recommend_baselines",
    "recommend_metrics",
    "register_tasks",
]
