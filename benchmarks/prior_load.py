"""Load time of the built-in priors: the arrays-and-JSON file against the joblib pickle it replaced.

For each built-in prior that fits something, the scikit-learn peer is fitted once on the bundled
data (at most ``--rows`` train rows), then saved both ways in one folder: ``<task>.joblib`` (what
runs saved before hook API 1.5: the FittedPrior with its scikit-learn objects) and
``priors/<task>.safetensors`` (:func:`shopmtl.core.data.priorfile.save_prior`). Each is loaded
``--repeats`` times, alternating, in this one process (after one warm-up load of each, so module
imports count for neither); the median is reported, alone and with a first prediction of 100 test
rows (a TF-IDF vocabulary's index is built on first use in the new format, on load by pickle).

    python benchmarks/prior_load.py [--rows 20000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import joblib
from shopmtl import BuildContext
from shopmtl.core.api import (
    FittedPrior,
    checked_state,
    load_plugins,
    load_prior,
    save_prior,
    with_derived,
)
from shopmtl.plugins import price_bin, recommend_peer, sales, user_profile
from threadpoolctl import threadpool_limits

#: (task, prior, the scikit-learn fit the pickle held before 0.2)
PRIORS = (
    ("sales", "gradient_boosting", sales.fit_gradient_boosting),
    ("price_bin", "tfidf_logreg", price_bin.fit_tfidf_logreg),
    ("user_profile", "tfidf_country_logreg", user_profile.fit_tfidf_country_logreg),
    ("recommend", "gradient_boosting", recommend_peer.fit_gradient_boosting),
)


def _median_seconds(load: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measure(root: Path, task: str, name: str, fit, spec, max_rows: int, repeats: int) -> str:
    """One table row: fit the peer, save it both ways, time each load (and load + predict)."""
    data = spec.build_dataset(BuildContext(settings=spec.settings()))
    train = data["train"].sample(min(max_rows, len(data["train"])), random_state=0)
    train = with_derived(spec, train)
    rows = with_derived(spec, data["test"].head(100))
    prior = spec.priors[name]
    estimator = fit(train, data["val"])
    legacy = root / f"{task}.joblib"
    joblib.dump(FittedPrior(name, estimator), legacy)  # what save_prior wrote before
    state = checked_state(task, name, prior.state(estimator))
    save_prior(root, task, FittedPrior(name, prior.from_state(state), state))

    def old() -> FittedPrior:
        return joblib.load(legacy)  # noqa: S301 -- our own file, written just above

    def new() -> FittedPrior:
        return load_prior(root, task, spec, name)

    old(), new()  # warm-up: imports and file cache for both
    load_old, load_new = (_median_seconds(f, repeats) for f in (old, new))
    use_old = _median_seconds(lambda: prior.predict(old().model, rows), repeats)
    use_new = _median_seconds(lambda: prior.predict(new().model, rows), repeats)
    size_old = legacy.stat().st_size / 1024
    size_new = (root / "priors" / f"{task}.safetensors").stat().st_size / 1024
    return (
        f"{task + '.' + name:<36}{size_old:>8.0f}{size_new:>8.0f}"
        f"{load_old * 1e3:>11.2f}{load_new * 1e3:>11.2f}"
        f"{use_old * 1e3:>12.2f}{use_new * 1e3:>12.2f}{load_new / load_old:>8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000, help="train rows each peer is fitted on")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    specs = load_plugins(only=[]).tasks
    print(f"{'prior':<36}{'file KB':>16}{'load ms':>22}{'+predict 100 ms':>24}{'ratio':>8}")
    print(
        f"{'':<36}{'joblib  arrays':>16}{'joblib   arrays':>22}{'joblib   arrays':>24}{'load':>8}"
    )
    with tempfile.TemporaryDirectory() as folder, threadpool_limits(1):
        root = Path(folder)
        for task, name, fit in PRIORS:
            print(_measure(root, task, name, fit, specs[task], args.rows, args.repeats))
    print("ratio = arrays load time / joblib load time (median; < 1: the new format loads faster)")


if __name__ == "__main__":
    main()
