"""``recommend``'s classical peer: gradient boosting on the numeric inputs and a TF-IDF cosine.

It is the task's strongest classical baseline (benchmarks/RESULTS.md) and its prior
(``tasks.recommend.prior: gradient_boosting``): :class:`GradientBoostingRanker` is a
module-level dataclass, so a fitted one pickles with a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # scikit-learn loads only when the peer is fitted
    from sklearn.feature_extraction.text import TfidfVectorizer

NUMERIC: tuple[str, ...] = ("log_popularity", "log_bought_before", "log_history_size")


@dataclass
class GradientBoostingRanker:
    """Gradient boosting on the numeric inputs plus the TF-IDF cosine of history and candidate,
    fitted: the classical peer, and the prior ``tasks.recommend.prior: gradient_boosting``."""

    vectorizer: Any
    model: Any

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([frame[list(NUMERIC)].to_numpy(dtype=float), _cosine(self.vectorizer, frame)])

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """``(n,)`` probability that the customer buys the candidate."""
        return self.model.predict_proba(self.features(frame))[:, 1]


def fit_gradient_boosting(train: pd.DataFrame, val: pd.DataFrame | None = None) -> GradientBoostingRanker:
    """The peer fitted on ``train`` (``val`` unused: scikit-learn's defaults, ``random_state=0``)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer

    # TF-IDF fitted on the train customers' histories (one per customer, not one per row).
    vectorizer = TfidfVectorizer().fit(pd.unique(train["history"].to_numpy(dtype=object)))
    ranker = GradientBoostingRanker(vectorizer, HistGradientBoostingClassifier(random_state=0))
    ranker.model.fit(ranker.features(train), train["label"].to_numpy(dtype=int))
    return ranker


def _cosine(vectorizer: TfidfVectorizer, frame: pd.DataFrame) -> np.ndarray:
    """Cosine of the TF-IDF vectors of each row's history and candidate description.

    Each distinct text is vectorised once (a customer's history repeats on every candidate
    row); the (histories x descriptions) product is small and computed densely. The texts
    themselves are the keys, so rows without identifier columns (``predict`` input) work too.
    """
    customer, first_of_customer = _codes(frame["history"])
    product, first_of_product = _codes(frame["description"])
    histories = vectorizer.transform(frame["history"].to_numpy(dtype=object)[first_of_customer])
    descriptions = vectorizer.transform(frame["description"].to_numpy(dtype=object)[first_of_product])
    # TF-IDF rows are L2-normalised, so the dot product is the cosine.
    return np.asarray((histories @ descriptions.T).toarray())[customer, product]


def _codes(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer code of each row's key, and the first row of each code."""
    codes, _ = pd.factorize(keys.to_numpy())
    _, first = np.unique(codes, return_index=True)
    return codes, first
