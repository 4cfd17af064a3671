"""Each built-in prior, saved as arrays and JSON and rebuilt without pickle or scikit-learn,
predicts what the fitted scikit-learn estimator predicts (<= 1e-6) on the real test split."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_reference import SPECS
from shopmtl.core.data.features import with_derived
from shopmtl.core.data.priorfile import load_prior, save_prior
from shopmtl.core.data.priors import FittedPrior, checked_state
from shopmtl.plugins import price_bin, recommend_peer, sales, user_profile
from threadpoolctl import threadpool_limits

#: Each built-in prior's scikit-learn fit (what the baselines table uses), by task and prior name.
SKLEARN_FITS = {
    ("sales", "gradient_boosting"): sales.fit_gradient_boosting,
    ("price_bin", "tfidf_logreg"): price_bin.fit_tfidf_logreg,
    ("user_profile", "tfidf_country_logreg"): user_profile.fit_tfidf_country_logreg,
    ("recommend", "gradient_boosting"): recommend_peer.fit_gradient_boosting,
}

#: Train rows each estimator is fitted on: enough for real trees and vocabularies, quick to fit.
FIT_ROWS = 3000


def test_every_builtin_prior_that_fits_something_is_covered():
    fitted = {
        (task, name)
        for task, spec in SPECS.items()
        for name in spec.priors
        if name != "mean_of_lags"
    }
    assert fitted == set(SKLEARN_FITS)


@pytest.mark.parametrize(("task", "name"), list(SKLEARN_FITS), ids=lambda v: str(v))
def test_a_rebuilt_prior_predicts_like_the_fitted_estimator(datasets, tmp_path, task, name):
    spec, data = SPECS[task], datasets[task]
    prior = spec.priors[name]
    train = with_derived(
        spec, data["train"].sample(min(FIT_ROWS, len(data["train"])), random_state=0)
    )
    test = with_derived(spec, data["test"]).drop(columns=[*spec.labels, *spec.keys])
    with threadpool_limits(
        1
    ):  # OpenMP threads on a shared machine: 10x slower fits and predictions
        estimator = SKLEARN_FITS[(task, name)](train, data["val"])
        expected = np.asarray(prior.predict(estimator, test), dtype=np.float64)

    state = checked_state(task, name, prior.state(estimator))  # from the scikit-learn objects
    save_prior(tmp_path, task, FittedPrior(name, estimator, state))
    rebuilt = load_prior(tmp_path, task, spec, name)

    modules = (
        {type(part).__module__ for part in vars(rebuilt.model).values()}
        if hasattr(rebuilt.model, "__dict__")
        else {type(rebuilt.model).__module__}
    )
    assert not any(m.startswith("sklearn") for m in modules), (
        modules
    )  # numpy predictors, not estimators
    got = np.asarray(prior.predict(rebuilt.model, test), dtype=np.float64)
    assert got.shape == expected.shape and len(got) == len(test) > 0
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # The prior a run fits is the rebuilt one from the start: it saves exactly what it predicts with.
    reopened = prior.from_state(rebuilt.state)
    np.testing.assert_array_equal(prior.predict(reopened, test), got)


def test_the_prior_file_holds_arrays_and_json_only(datasets, tmp_path):
    spec, data = SPECS["price_bin"], datasets["price_bin"]
    prior = spec.priors["tfidf_logreg"]
    fitted = prior.fit(data["train"].head(500), data["val"])
    save_prior(tmp_path, "price_bin", FittedPrior("tfidf_logreg", fitted, prior.state(fitted)))
    raw = (tmp_path / "priors" / "price_bin.safetensors").read_bytes()
    header_size = int.from_bytes(raw[:8], "little")
    import json

    header = json.loads(raw[8 : 8 + header_size])
    meta = json.loads(header["__metadata__"]["shopmtl.prior"])
    assert meta["prior"] == "tfidf_logreg" and meta["format"] == 1
    assert "ngram_range" in meta["meta"]["vectorizer"]["settings"]
    assert {k for k in header if k != "__metadata__"} == {
        "vectorizer.idf",
        "model.coef",
        "model.intercept",
        "model.classes",
    }
