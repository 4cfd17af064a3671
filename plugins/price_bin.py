"""``price_bin``: multiclass price range of a product from its description (TASKS.md, task 2).

One row per product; the label is the bin of its median UnitPrice over all cleaned rows,
edges 1, 2, 4, 8 GBP. Split by product key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from shopmtl import (
    BuildContext,
    EvalBatch,
    Prior,
    PriorState,
    Register,
    TaskData,
    TaskSpec,
    decode_by_kind,
    hookimpl,
)
from shopmtl.plugins.shared import retail
from shopmtl.plugins.shared.baselines import Predictor, baseline_metrics
from shopmtl.plugins.shared.priors import log_probabilities

#: A baseline: rows -> predictions (the task's activated outputs).

#: Bin edges in GBP. They define the classes, which a task fixes when it registers, so
#: they are a constant rather than a setting.
PRICE_EDGES: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
CLASSES: tuple[str, ...] = ("<1", "1-2", "2-4", "4-8", ">=8")
PRICE_BIN_LABELS: tuple[str, ...] = ("label",)

#: Inverse regularisation strengths the TF-IDF baseline chooses from by val macro-F1.
TFIDF_C_GRID: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class PriceBinSettings:
    """``price_bin`` has no settings: it uses every cleaned row of the file, and its bin
    edges are the classes (see :data:`PRICE_EDGES`). The class exists so every built-in
    task is configured the same way (``tasks.price_bin.settings: {}``)."""


def price_class(median_price: np.ndarray) -> np.ndarray:
    """Class index of each price: ``<1`` -> 0, ``[1, 2)`` -> 1, ... ``>=8`` -> 4."""
    return np.digitize(np.asarray(median_price, dtype=float), PRICE_EDGES, right=False)


def build_price_bin(ctx: BuildContext) -> TaskData:
    """One row per product of the context's file, split by product key.

    DuckDB computes each product's median price and description; only one row per product
    reaches pandas.
    """
    con = retail.open_transactions(ctx.data_path, ctx.column_map)
    try:
        products = con.execute(f"""
            SELECT stock_code, any_value(product_description) AS description, {retail.median_sql("unit_price")} AS median
            FROM clean GROUP BY stock_code ORDER BY stock_code
        """).df()
    finally:
        con.close()
    frame = pd.DataFrame(
        {
            "stock_code": products["stock_code"].to_numpy(),
            "description": products["description"].to_numpy(),
            "label": price_class(products["median"].to_numpy(dtype=float)).astype(float),
        }
    )
    split = retail.split_products(frame["stock_code"]).to_numpy()
    return TaskData(
        splits={s: frame[split == s].reset_index(drop=True) for s in ("train", "val", "test")},
        sources=retail.transactions_files(ctx.data_path),
    )


METRIC_DIRECTIONS: dict[str, str] = {
    "accuracy": "max",
    "macro_f1": "max",
    "confusion_matrix": "info",
}


def price_bin_metrics(batch: EvalBatch) -> dict[str, object]:
    """Accuracy, macro-F1 over the 5 classes, and the confusion matrix (rows: true class)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y = np.asarray(batch.labels, dtype=float).reshape(len(batch.labels), -1)[:, 0]
    probabilities = np.asarray(batch.predictions, dtype=float).reshape(len(batch.predictions), -1)
    present = ~np.isnan(y)
    y, pred = y[present].astype(int), probabilities[present].argmax(axis=1)
    if len(y) == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan"), "confusion_matrix": []}
    labels = list(range(len(CLASSES)))
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
    }


def decode_price_bin(predictions: np.ndarray) -> pd.DataFrame:
    """``prediction`` (the bin's name) and ``confidence`` (its probability)."""
    return decode_by_kind("multiclass", predictions, CLASSES)


def price_bin_baselines(
    data: TaskData, split: str, *, classical: bool = True
) -> dict[str, dict[str, object]]:
    """TASKS.md's baselines on ``split``: the train majority class and, when ``classical``,
    TF-IDF (word 1-2-grams) + logistic regression with C chosen by val macro-F1."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    # One thread per native pool: OpenMP/BLAS threads spinning on busy cores (beside a
    # training job) made these fits 5-30x slower in our measurements; alone, it costs ~1 s.
    with threadpool_limits(1):
        train = data["train"]
        majority = int(train["label"].dropna().astype(int).value_counts().sort_index().idxmax())
        one_hot = np.eye(len(CLASSES))[majority]
        predictors: dict[str, Predictor] = {
            "majority": lambda f: np.tile(one_hot, (len(f), 1)),
        }
        if classical:
            predictors["tfidf_logreg"] = fit_tfidf_logreg(train, data["val"]).probabilities
        return baseline_metrics(predictors, data, split, list(PRICE_BIN.labels), price_bin_metrics)


@dataclass
class TfidfLogreg:
    """TF-IDF (word 1-2-grams) + logistic regression, fitted: the classical peer, and the prior
    ``tasks.price_bin.prior: tfidf_logreg`` (whose parts are kept as arrays:
    :func:`fit_tfidf_logreg_prior`)."""

    vectorizer: Any
    model: Any

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """``(n, 5)`` class probabilities (a class absent from train gets 0)."""
        out = np.zeros((len(frame), len(CLASSES)))
        out[:, self.model.classes_.astype(int)] = self.model.predict_proba(
            self.vectorizer.transform(frame["description"])
        )
        return out


def fit_tfidf_logreg(train: pd.DataFrame, val: pd.DataFrame) -> TfidfLogreg:
    """The peer fitted on ``train``'s labelled rows, its C chosen by macro-F1 on ``val``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train = train.dropna(subset=["label"])
    vectorizer = TfidfVectorizer(ngram_range=(1, 2)).fit(train["description"])
    x_train = vectorizer.transform(train["description"])
    best, best_f1 = None, -1.0
    for c in TFIDF_C_GRID:
        # saga: same fit as lbfgs here, ~5x faster on sparse TF-IDF (keeps the baseline table quick)
        model = LogisticRegression(C=c, solver="saga", max_iter=5000, random_state=0)
        candidate = TfidfLogreg(vectorizer, model.fit(x_train, train["label"].astype(int)))
        f1 = _macro_f1(candidate.probabilities(val), val)
        if f1 > best_f1:  # strict: ties keep the smaller C (more regularised)
            best, best_f1 = candidate, f1
    if best is None:  # pragma: no cover - the grid is a non-empty constant
        raise RuntimeError("price_bin: the regularisation grid is empty")
    return best


def fit_tfidf_logreg_prior(train: pd.DataFrame, val: pd.DataFrame) -> TfidfLogreg:
    """The peer as the prior: fitted by scikit-learn, kept as arrays a run saves without pickle."""
    from shopmtl.plugins.shared.portable.linear import Logistic
    from shopmtl.plugins.shared.portable.text import Tfidf

    fitted = fit_tfidf_logreg(train, val)
    return TfidfLogreg(Tfidf.of(fitted.vectorizer), Logistic.of(fitted.model))


def tfidf_logreg_state(fitted: TfidfLogreg) -> PriorState:
    """The prior's vocabulary, idf and coefficients (``Prior.state``)."""
    from shopmtl.plugins.shared.portable.linear import Logistic
    from shopmtl.plugins.shared.portable.text import Tfidf

    return PriorState.join(
        vectorizer=Tfidf.of(fitted.vectorizer).state(), model=Logistic.of(fitted.model).state()
    )


def tfidf_logreg_from_state(state: PriorState) -> TfidfLogreg:
    """The prior :func:`tfidf_logreg_state` described (``Prior.from_state``)."""
    from shopmtl.plugins.shared.portable.linear import Logistic
    from shopmtl.plugins.shared.portable.text import Tfidf

    return TfidfLogreg(
        Tfidf.from_state(state.part("vectorizer")), Logistic.from_state(state.part("model"))
    )


def _macro_f1(probabilities: np.ndarray, frame: pd.DataFrame) -> float:
    batch = EvalBatch(
        split="val",
        frame=frame,
        predictions=probabilities,
        labels=frame[list(PRICE_BIN_LABELS)].to_numpy(dtype=float),
        score=lambda extra: np.empty(0),
    )
    return float(price_bin_metrics(batch)["macro_f1"])


#: The classical models a run may start price_bin's head from (``tasks.price_bin.prior``).
PRIORS = {
    "tfidf_logreg": Prior(
        description="TF-IDF word 1-2-grams + logistic regression (C by val macro-F1): the classical peer",
        fit=fit_tfidf_logreg_prior,
        predict=lambda fitted, frame: log_probabilities(fitted.probabilities(frame)),
        state=tfidf_logreg_state,
        from_state=tfidf_logreg_from_state,
    ),
}


PRICE_BIN = TaskSpec(
    name="price_bin",
    kind="multiclass",
    description="Price range of a product (<1, 1-2, 2-4, 4-8, >=8 GBP) from its description",
    text="description",
    labels=PRICE_BIN_LABELS,
    build_dataset=build_price_bin,
    metrics=price_bin_metrics,
    metric_directions=METRIC_DIRECTIONS,
    primary_metric="macro_f1",
    keys=("stock_code",),
    classes=CLASSES,
    settings=PriceBinSettings,
    decode=decode_price_bin,
    baselines=price_bin_baselines,
    priors=PRIORS,
)


@hookimpl
def register_tasks(register: Register) -> None:
    """Register the ``price_bin`` task."""
    register(PRICE_BIN)


__all__ = [
    "CLASSES",
    "PRICE_BIN",
    "PRICE_EDGES",
    "PriceBinSettings",
    "build_price_bin",
    "decode_price_bin",
    "price_bin_baselines",
    "price_bin_metrics",
    "price_class",
    "register_tasks",
]
