"""``recommend``'s classical peer: gradient boosting on the numeric inputs and a TF-IDF cosine.

It is the task's strongest classical baseline (benchmarks/RESULTS.md) and its prior
(``tasks.recommend.prior: gradient_boosting``): as the prior its vectorizer and trees are
kept as arrays (:func:`fit_gradient_boosting_prior`), which a run saves without pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from shopmtl import PriorState

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
        return np.column_stack(
            [frame[list(NUMERIC)].to_numpy(dtype=float), _cosine(self.vectorizer, frame)]
        )

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """``(n,)`` probability that the customer buys the candidate."""
        return self.model.predict_proba(self.features(frame))[:, 1]


def fit_gradient_boosting(
    train: pd.DataFrame, val: pd.DataFrame | None = None
) -> GradientBoostingRanker:
    """The peer fitted on ``train`` (``val`` unused: scikit-learn's defaults, ``random_state=0``)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer

    # TF-IDF fitted on the train customers' histories (one per customer, not one per row).
    vectorizer = TfidfVectorizer().fit(pd.unique(train["history"].to_numpy(dtype=object)))
    ranker = GradientBoostingRanker(vectorizer, HistGradientBoostingClassifier(random_state=0))
    ranker.model.fit(ranker.features(train), train["label"].to_numpy(dtype=int))
    return ranker


def fit_gradient_boosting_prior(
    train: pd.DataFrame, val: pd.DataFrame | None = None
) -> GradientBoostingRanker:
    """The peer as the prior: fitted by scikit-learn, its vectorizer and trees kept as arrays."""
    from shopmtl.plugins.shared.portable.text import Tfidf
    from shopmtl.plugins.shared.portable.trees import BoostedTrees

    fitted = fit_gradient_boosting(train, val)
    return GradientBoostingRanker(Tfidf.of(fitted.vectorizer), BoostedTrees.of(fitted.model))


def ranker_state(fitted: GradientBoostingRanker) -> PriorState:
    """The prior's vocabulary, idf and trees (``Prior.state``)."""
    from shopmtl.plugins.shared.portable.text import Tfidf
    from shopmtl.plugins.shared.portable.trees import BoostedTrees

    return PriorState.join(
        vectorizer=Tfidf.of(fitted.vectorizer).state(), model=BoostedTrees.of(fitted.model).state()
    )


def ranker_from_state(state: PriorState) -> GradientBoostingRanker:
    """The prior :func:`ranker_state` described (``Prior.from_state``)."""
    from shopmtl.plugins.shared.portable.text import Tfidf
    from shopmtl.plugins.shared.portable.trees import BoostedTrees

    return GradientBoostingRanker(
        Tfidf.from_state(state.part("vectorizer")), BoostedTrees.from_state(state.part("model"))
    )


#: Entries of the dense (histories x descriptions) block computed at a time: 128 MB of float64.
BLOCK_ENTRIES = 1 << 24


def _cosine(
    vectorizer: TfidfVectorizer, frame: pd.DataFrame, block_entries: int | None = None
) -> np.ndarray:
    """Cosine of the TF-IDF vectors of each row's history and candidate description.

    Each distinct text is vectorised once (a customer's history repeats on every candidate
    row). The (histories x descriptions) product is computed densely, a block of customers
    at a time (``block_entries``, default :data:`BLOCK_ENTRIES`), and only for the
    descriptions those customers' rows need: whole, it grows with the square of the data
    (10x the bundled file: 28k x 39k, 8.7 GB). An entry of the product does not depend on the
    other rows or columns, so the cosines are the whole product's, bit for bit. The texts
    themselves are the keys, so rows without identifier columns (``predict`` input) work too.
    """
    customer, first_of_customer = _codes(frame["history"])
    product, first_of_product = _codes(frame["description"])
    histories = vectorizer.transform(frame["history"].to_numpy(dtype=object)[first_of_customer])
    descriptions = vectorizer.transform(
        frame["description"].to_numpy(dtype=object)[first_of_product]
    ).T
    per_block = max(1, (block_entries or BLOCK_ENTRIES) // max(descriptions.shape[1], 1))
    rows = np.argsort(customer, kind="stable")  # rows grouped by customer, block by block
    bounds = np.searchsorted(
        customer[rows], np.arange(0, histories.shape[0] + per_block, per_block)
    )
    cosine = np.empty(len(frame), dtype=np.float64)
    for block, start in enumerate(range(0, histories.shape[0], per_block)):
        mine = rows[bounds[block] : bounds[block + 1]]
        # Only the descriptions these customers' rows pair them with: a column of the product does
        # not depend on the others either, and a block's customers meet a fraction of the products.
        needed, column = np.unique(product[mine], return_inverse=True)
        # TF-IDF rows are L2-normalised, so the dot product is the cosine.
        product_block = np.asarray(
            (histories[start : start + per_block] @ descriptions[:, needed]).toarray()
        )
        cosine[mine] = product_block[customer[mine] - start, column]
    return cosine


def _codes(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer code of each row's key, and the first row of each code."""
    codes, _ = pd.factorize(keys.to_numpy())
    _, first = np.unique(codes, return_index=True)
    return codes, first
