"""``user_profile``'s classical peer: TF-IDF of the history + one-hot country, a logistic
regression per label word. It is the task's baseline and its prior
(``tasks.user_profile.prior: tfidf_country_logreg``), kept as arrays (:func:`portable`) and
saved through :func:`tfidf_country_logreg_state` -- never pickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from shopmtl import PriorState


@dataclass
class TfidfCountryLogreg:
    """TF-IDF of the history + one-hot country, one logistic regression per label, fitted: the
    classical peer, and the prior ``tasks.user_profile.prior: tfidf_country_logreg`` (whose
    parts are kept as arrays: :func:`portable`)."""

    vectorizer: Any
    countries: Any
    models: list[
        Any
    ]  # a LogisticRegression per label, or the train rate of a label seen in one class only

    def features(self, frame: pd.DataFrame) -> Any:
        from scipy.sparse import hstack

        text = self.vectorizer.transform(frame["history"].astype(str))
        return hstack([text, self.countries.transform(frame[["country"]].astype(str))]).tocsr()

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """``(n, 20)`` probability of each label word."""
        x = self.features(frame)
        columns = [
            np.full(len(frame), m) if isinstance(m, float) else m.predict_proba(x)[:, 1]
            for m in self.models
        ]
        return np.column_stack(columns)


def fit_per_label(train: pd.DataFrame, labels: Sequence[str]) -> TfidfCountryLogreg:
    """The peer fitted on ``train``: one logistic regression per label column of ``labels``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    # TASKS.md names this baseline only in its figures table, without settings: scikit-learn's
    # defaults (word unigrams, C=1) reproduce its mAP; its F1s depend on unstated choices.
    vectorizer = TfidfVectorizer().fit(train["history"].astype(str))
    countries = OneHotEncoder(handle_unknown="ignore").fit(train[["country"]].astype(str))
    fitted = TfidfCountryLogreg(vectorizer, countries, [])
    x = fitted.features(train)
    for word in labels:
        y = train[word].to_numpy(dtype=float)
        known = ~np.isnan(y)
        if (
            len(np.unique(y[known])) < 2
        ):  # a label never (or always) seen in train: predict its rate
            fitted.models.append(float(y[known].mean()) if known.any() else 0.0)
            continue
        fitted.models.append(
            LogisticRegression(C=1.0, max_iter=2000).fit(x[known], y[known].astype(int))
        )
    return fitted


def portable(fitted: TfidfCountryLogreg) -> TfidfCountryLogreg:
    """The same peer with its scikit-learn parts as arrays (what the prior keeps and saves)."""
    from shopmtl.plugins.shared.portable.linear import Logistic
    from shopmtl.plugins.shared.portable.text import OneHot, Tfidf

    models = [m if isinstance(m, float) else Logistic.of(m) for m in fitted.models]
    return TfidfCountryLogreg(Tfidf.of(fitted.vectorizer), OneHot.of(fitted.countries), models)


def tfidf_country_logreg_state(fitted: TfidfCountryLogreg) -> PriorState:
    """The prior's vocabulary, idf, countries and per-label coefficients (``Prior.state``).

    A label seen in one class only has a rate instead of a model: ``rates`` holds it (NaN
    where the label has a model) and ``model_<k>`` the k-th label's logistic regression.
    """
    from shopmtl.plugins.shared.portable.linear import Logistic
    from shopmtl.plugins.shared.portable.text import OneHot, Tfidf

    rates = np.array([m if isinstance(m, float) else np.nan for m in fitted.models])
    parts = {
        f"model_{k}": Logistic.of(m).state()
        for k, m in enumerate(fitted.models)
        if not isinstance(m, float)
    }
    return PriorState.join(
        vectorizer=Tfidf.of(fitted.vectorizer).state(),
        countries=OneHot.of(fitted.countries).state(),
        rates=PriorState({"rates": rates}),
        **parts,
    )


def tfidf_country_logreg_from_state(state: PriorState) -> TfidfCountryLogreg:
    """The prior :func:`tfidf_country_logreg_state` described (``Prior.from_state``)."""
    from shopmtl.plugins.shared.portable.linear import Logistic
    from shopmtl.plugins.shared.portable.text import OneHot, Tfidf

    rates = state.part("rates").arrays["rates"]
    models: list[Any] = [
        float(rate) if not np.isnan(rate) else Logistic.from_state(state.part(f"model_{k}"))
        for k, rate in enumerate(rates)
    ]
    return TfidfCountryLogreg(
        Tfidf.from_state(state.part("vectorizer")),
        OneHot.from_state(state.part("countries")),
        models,
    )
