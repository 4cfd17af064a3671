"""``user_profile``: multi-label "what will this customer buy next" (TASKS.md, task 3).

One row per customer with a purchase before and on/after the cutoff. Input: the
customer's history text (distinct product descriptions bought before the cutoff, newest
first) and country; labels: 20 words, each 1 when a product bought on/after the cutoff
has the word in its description. Split by customer key.

Decision thresholds are per label, fitted on val (:func:`calibrate_user_profile`): the
F1s and ``decode`` use them; ``micro_f1_at_05``/``macro_f1_at_05`` (registered as extra
metrics) keep TASKS.md's fixed 0.5, comparable with the baselines.

:func:`customer_profiles` (customers, history, country; in ``plugins/shared/customers.py``) is shared with ``recommend``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from shopmtl import (
    BuildContext,
    DerivedFeatures,
    MetricSpec,
    Prior,
    Register,
    TaskData,
    TaskSpec,
    hookimpl,
)
from shopmtl.plugins.shared import retail
from shopmtl.plugins.shared.baselines import Predictor, baseline_metrics
from shopmtl.plugins.shared.customers import HISTORY_SEPARATOR, customer_profiles, query_profiles
from shopmtl.plugins.shared.priors import logits

# The metrics live beside this module; these names stay importable from here.
from shopmtl.plugins.user_profile_metrics import (  # noqa: F401 -- re-exported
    DEFAULT_THRESHOLD,
    LABELS,
    METRIC_DIRECTIONS,
    THRESHOLD_GRID,
    calibrate_user_profile,
    decode_user_profile,
    f1_at_half,
    thresholds_of,
    user_profile_metrics,
)
from shopmtl.plugins.user_profile_peer import (
    TfidfCountryLogreg,
    fit_per_label,
    portable,
    tfidf_country_logreg_from_state,
    tfidf_country_logreg_state,
)

#: A baseline: rows -> predictions (the task's activated outputs).


@dataclass(frozen=True)
class UserProfileSettings:
    """Settings of ``user_profile``; the default is TASKS.md's for the 2010-2011 file."""

    #: History is everything before this instant; labels come from purchases on/after it.
    cutoff: str = "2011-09-01 00:00"

    def __post_init__(self) -> None:
        pd.Timestamp(self.cutoff)  # a malformed date fails here, when the config is read


def label_matrix(descriptions: pd.Series) -> np.ndarray:
    """``(n, 20)`` 0/1: label k is 1 where ``\\bWORD\\b`` matches the upper-cased description."""
    upper = descriptions.str.upper()
    return np.column_stack(
        [
            upper.str.contains(rf"\b{re.escape(word)}\b", regex=True).to_numpy(dtype=bool)
            for word in LABELS
        ]
    ).astype(float)


#: How many of a history's newest items the "recent" shares look at.
RECENT_ITEMS = 10
#: Derived numeric features per label word: the share of the history's items that carry
#: it, the log1p count of them, and the share among the newest RECENT_ITEMS items.
HISTORY_FEATURES: tuple[str, ...] = (
    *(f"history_share_{w}" for w in LABELS),
    *(f"history_count_{w}" for w in LABELS),
    *(f"recent_share_{w}" for w in LABELS),
    "history_items",
)


def history_features(frame: pd.DataFrame) -> pd.DataFrame:
    """How often each label word occurs in the whole history (:data:`HISTORY_FEATURES`).

    The encoder reads the first ``encoder.max_length`` tokens of a history -- the newest
    10-20 of a customer's often hundred-odd products -- so these counts carry the rest:
    what a customer has always bought is the best single predictor of what they buy
    next (TASKS.md's "seen in own history" baseline). Computed from the history text
    alone, so ``predict`` input needs nothing more.
    """
    items = frame["history"].fillna("").astype(str).str.split(HISTORY_SEPARATOR, regex=False)
    exploded = items.explode()
    owner = exploded.index.to_numpy()
    descriptions = exploded.fillna("").astype(str)
    distinct = pd.Series(descriptions.unique())
    hits = (
        pd.DataFrame(label_matrix(distinct), index=distinct.to_numpy())
        .reindex(descriptions.to_numpy())
        .to_numpy(copy=True)
    )
    hits[(descriptions == "").to_numpy()] = 0.0  # an empty history has no items
    position = exploded.groupby(level=0).cumcount().to_numpy()
    per_row = pd.DataFrame(hits, columns=list(LABELS))
    per_row["_row"] = owner
    counts = per_row.groupby("_row", sort=False).sum().reindex(frame.index)
    recent = per_row[position < RECENT_ITEMS].groupby("_row", sort=False).sum().reindex(frame.index)
    n_items = items.map(lambda xs: sum(1 for x in xs if x)).to_numpy(dtype=float)
    n_recent = np.minimum(n_items, RECENT_ITEMS)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n_items[:, None] > 0, counts.to_numpy() / n_items[:, None], 0.0)
        recent_share = np.where(n_recent[:, None] > 0, recent.to_numpy() / n_recent[:, None], 0.0)
    values = np.hstack(
        [share, np.log1p(counts.to_numpy()), recent_share, np.log1p(n_items)[:, None]]
    )
    return pd.DataFrame(values, columns=list(HISTORY_FEATURES), index=frame.index)


def build_user_profile(ctx: BuildContext) -> TaskData:
    """One row per customer of the context's file, split by customer key.

    DuckDB builds the profiles and the distinct (customer, product) purchases after the
    cutoff; pandas labels the distinct products and ORs them per customer.
    """
    settings: UserProfileSettings = ctx.settings or UserProfileSettings()
    cutoff = pd.Timestamp(settings.cutoff)
    con = retail.open_transactions(ctx.data_path, ctx.column_map)
    try:
        profiles = query_profiles(con, cutoff)
        after = con.execute(
            "SELECT DISTINCT customer_id, stock_code, product_description FROM customers "
            "WHERE invoice_date >= $cutoff AND customer_id IN (SELECT customer_id FROM profiles)",
            {"cutoff": cutoff.to_pydatetime()},
        ).df()
    finally:
        con.close()

    # Label words per product once (a few thousand descriptions), then OR them per customer.
    products = after.drop_duplicates("stock_code")
    product_labels = pd.DataFrame(
        label_matrix(products["product_description"]), index=products["stock_code"], columns=LABELS
    )
    bought = pd.DataFrame(product_labels.reindex(after["stock_code"]).to_numpy(), columns=LABELS)
    bought["customer_id"] = after["customer_id"].to_numpy()
    labels = bought.groupby("customer_id").max().reindex(profiles["customer_id"])

    frame = pd.concat(
        [profiles, pd.DataFrame(labels.to_numpy(dtype=float), columns=list(LABELS))], axis=1
    )
    split = retail.split_customers(frame["customer_id"]).to_numpy()
    return TaskData(
        splits={s: frame[split == s].reset_index(drop=True) for s in ("train", "val", "test")},
        sources=retail.transactions_files(ctx.data_path),
    )


def user_profile_baselines(
    data: TaskData, split: str, *, classical: bool = True
) -> dict[str, dict[str, float]]:
    """TASKS.md's baselines on ``split``: the train label frequencies, the labels whose word
    is in the customer's own history and, when ``classical``, TF-IDF + country logistic
    regression (one per label)."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    # One thread per native pool: OpenMP/BLAS threads spinning on busy cores (beside a
    # training job) made these fits 5-30x slower in our measurements; alone, it costs ~1 s.
    with threadpool_limits(1):
        prior = np.nanmean(data["train"][list(LABELS)].to_numpy(dtype=float), axis=0)
        predictors: dict[str, Predictor] = {
            "train_label_prior": lambda f: np.tile(prior, (len(f), 1)),
            "seen_in_history": lambda f: label_matrix(f["history"].astype(str)),
        }
        if classical:
            predictors["tfidf_country_logreg"] = fit_tfidf_country_logreg(
                data["train"]
            ).probabilities
        return baseline_metrics(predictors, data, split, list(LABELS), user_profile_metrics)


def fit_tfidf_country_logreg(
    train: pd.DataFrame, val: pd.DataFrame | None = None
) -> TfidfCountryLogreg:
    """The peer fitted on ``train`` (``val`` unused: its settings are fixed), one model per label."""
    return fit_per_label(train, LABELS)


#: The classical models a run may start user_profile's head from (``tasks.user_profile.prior``).
PRIORS = {
    "tfidf_country_logreg": Prior(
        description="TF-IDF of the history + country, one logistic regression per label: the classical peer",
        fit=lambda train, val: portable(fit_tfidf_country_logreg(train, val)),  # kept as arrays
        predict=lambda fitted, frame: logits(fitted.probabilities(frame)),
        state=tfidf_country_logreg_state,
        from_state=tfidf_country_logreg_from_state,
    ),
}


USER_PROFILE = TaskSpec(
    name="user_profile",
    kind="multilabel",
    description="Which of 20 product words a customer's next purchases will contain, from their history",
    text="history",
    labels=LABELS,
    build_dataset=build_user_profile,
    metrics=user_profile_metrics,
    metric_directions=METRIC_DIRECTIONS,
    primary_metric="map",
    numeric=HISTORY_FEATURES,
    categorical=("country",),
    keys=("customer_id",),
    settings=UserProfileSettings,
    decode=decode_user_profile,
    baselines=user_profile_baselines,
    calibrate=calibrate_user_profile,
    derive=DerivedFeatures(HISTORY_FEATURES, history_features),
    priors=PRIORS,
)

#: TASKS.md's F1s at the fixed threshold 0.5, beside the calibrated ones, so a model's
#: figures stay comparable with the baselines' (which have no calibration).
FIXED_THRESHOLD_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("user_profile", "micro_f1_at_05", "max", lambda batch: f1_at_half(batch)[0]),
    MetricSpec("user_profile", "macro_f1_at_05", "max", lambda batch: f1_at_half(batch)[1]),
)


@hookimpl
def register_tasks(register: Register) -> None:
    """Register the ``user_profile`` task."""
    register(USER_PROFILE)


@hookimpl
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Add the fixed-threshold F1s to ``user_profile``."""
    for metric in FIXED_THRESHOLD_METRICS:
        register(metric)


__all__ = [
    "HISTORY_SEPARATOR",
    "LABELS",
    "USER_PROFILE",
    "UserProfileSettings",
    "build_user_profile",
    "calibrate_user_profile",
    "customer_profiles",
    "decode_user_profile",
    "label_matrix",
    "register_metrics",
    "register_tasks",
    "thresholds_of",
    "user_profile_baselines",
    "user_profile_metrics",
]
