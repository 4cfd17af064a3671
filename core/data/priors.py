"""Classical priors (:class:`~shopmtl.registry.spec.Prior`): fitted once per run, read as offsets.

A prior is a classical model the head starts from: its raw output is added to the head's,
so the network learns a residual over it. Fitting it on the rows the head trains on and
reading its predictions on those same rows would hand the head a prior that already knows
each label; the train rows therefore get *out-of-fold* predictions (each fold's rows from
a prior fitted without them), and every other frame -- val, test, ``predict`` input -- gets
the prior fitted on all train rows. That is stacking without leakage (Wolpert, 1992).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from shopmtl.core.config import TaskConfig
from shopmtl.core.data.trainsplit import TrainSplit, kept_rows
from shopmtl.registry.derived import with_derived
from shopmtl.registry.spec import Prior, TaskSpec

#: Where a model folder keeps each task's fitted prior (``<task>.joblib``).
PRIORS_DIR = "priors"


@dataclass
class FittedPrior:
    """A task's prior as one run fitted it: its name in ``TaskSpec.priors`` and the fitted model."""

    name: str
    model: Any  # what Prior.fit returned on all train rows (None for a prior with nothing to fit)


class PriorError(ValueError):
    """A prior was misnamed, failed to fit, or predicted the wrong shape; the message says which."""


def chosen_prior(spec: TaskSpec, name: str) -> Prior:
    """``spec``'s prior ``name``, or an error listing the priors the task offers."""
    if name in spec.priors:
        return spec.priors[name]
    offered = ", ".join(sorted(spec.priors)) or "none"
    raise PriorError(
        f"tasks.{spec.name}.prior: task '{spec.name}' has no prior {name!r} (it offers: {offered}); "
        f"set tasks.{spec.name}.prior to one of them, or to null"
    )


def fit_prior(
    spec: TaskSpec, name: str, train: pd.DataFrame, val: pd.DataFrame, *, folds: int, seed: int
) -> tuple[FittedPrior, np.ndarray]:
    """The prior fitted on all of ``train``, and out-of-fold outputs for every train row.

    Returns ``(fitted, oof)`` with ``oof`` of shape ``(len(train), n_outputs)``, row-aligned
    with ``train``. Folds are shuffled by ``seed``; with ``Prior.group`` a group's rows share
    a fold, so no fold is fitted on a sibling of the row it predicts.
    """
    prior = chosen_prior(spec, name)
    if len(train) < folds:
        raise PriorError(
            f"task '{spec.name}': prior {name!r} needs at least prior_folds={folds} train rows, "
            f"got {len(train)}; lower tasks.{spec.name}.prior_folds or give it more rows"
        )
    oof = np.zeros((len(train), spec.n_outputs), dtype=np.float32)
    for held_out in _fold_rows(train, prior.group, folds, seed):
        kept = np.setdiff1d(np.arange(len(train)), held_out)
        model = _fit(spec, name, prior, train.iloc[kept].reset_index(drop=True), val)
        oof[held_out] = _outputs(
            spec, name, prior, model, train.iloc[held_out].reset_index(drop=True)
        )
    return FittedPrior(name, _fit(spec, name, prior, train, val)), oof


def prior_outputs(spec: TaskSpec, fitted: FittedPrior, frame: pd.DataFrame) -> np.ndarray:
    """``(len(frame), n_outputs)`` float32 raw outputs of the fitted prior on ``frame``'s rows."""
    return _outputs(spec, fitted.name, chosen_prior(spec, fitted.name), fitted.model, frame)


def save_prior(folder: Path, task: str, fitted: FittedPrior) -> None:
    """Write ``fitted`` as ``<folder>/priors/<task>.joblib`` (the manifest then covers it)."""
    import joblib  # scikit-learn's own persistence

    (folder / PRIORS_DIR).mkdir(exist_ok=True)
    joblib.dump(fitted, folder / PRIORS_DIR / f"{task}.joblib")


def load_prior(folder: Path, task: str) -> FittedPrior:
    """The fitted prior :func:`save_prior` wrote for ``task``.

    joblib files are pickles: they run code when loaded. Callers load only model folders
    whose sha256 manifest verified (:func:`shopmtl.core.runs.checkpoint.source_model_dir`),
    i.e. runs you trained or trust, as with any pickled scikit-learn model.
    """
    import joblib

    path = folder / PRIORS_DIR / f"{task}.joblib"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the run's features.json names a prior for task '{task}'; "
            "restore the file from a copy of the run, or train it again"
        )
    try:
        fitted = joblib.load(path)
    except (
        ImportError,
        AttributeError,
    ) as error:  # the plugin module or class that fitted it is gone
        raise PriorError(
            f"{path} cannot be loaded ({type(error).__name__}: {error}); install the plugin (and version) "
            f"that trained the run's task '{task}'"
        ) from None
    if not isinstance(fitted, FittedPrior):
        raise PriorError(
            f"{path} holds a {type(fitted).__name__}, not a fitted shopmtl prior; train the run again"
        )
    return fitted


def _fold_rows(train: pd.DataFrame, group: str | None, folds: int, seed: int) -> list[np.ndarray]:
    """Row positions of each fold: shuffled rows, or whole groups dealt out in shuffled order."""
    rng = np.random.default_rng(seed)
    if group is None:
        return np.array_split(rng.permutation(len(train)), folds)
    codes, uniques = pd.factorize(train[group], use_na_sentinel=False)
    fold_of_group = np.empty(len(uniques), dtype=np.int64)
    fold_of_group[rng.permutation(len(uniques))] = np.arange(len(uniques)) % folds
    return [np.flatnonzero(fold_of_group[codes] == k) for k in range(folds)]


def _fit(spec: TaskSpec, name: str, prior: Prior, train: pd.DataFrame, val: pd.DataFrame) -> Any:
    try:
        return prior.fit(train, val)
    except Exception as error:  # a plugin's code: name the task and prior, keep the cause
        raise PriorError(
            f"task '{spec.name}': fitting prior {name!r} failed: {type(error).__name__}: {error}"
        ) from error


def _outputs(
    spec: TaskSpec, name: str, prior: Prior, model: Any, frame: pd.DataFrame
) -> np.ndarray:
    try:
        values = np.asarray(prior.predict(model, frame), dtype=np.float64)
    except Exception as error:
        raise PriorError(
            f"task '{spec.name}': prior {name!r} failed to predict: {type(error).__name__}: {error}"
        ) from error
    values = values.reshape(len(frame), -1) if values.ndim == 1 else values
    if values.shape != (len(frame), spec.n_outputs):
        raise PriorError(
            f"task '{spec.name}': prior {name!r} predicted shape {values.shape} for {len(frame)} rows; "
            f"its predict must return ({len(frame)}, {spec.n_outputs}) raw outputs, one per head output"
        )
    if not np.isfinite(values).all():
        raise PriorError(
            f"task '{spec.name}': prior {name!r} predicted NaN or infinite values; clip probabilities "
            "before taking logs (e.g. np.clip(p, 1e-6, 1 - 1e-6))"
        )
    return values.astype(np.float32)


def prior_for_network_rows(
    spec: TaskSpec, task_config: TaskConfig, train: TrainSplit, val: pd.DataFrame, seed: int
) -> tuple[FittedPrior, np.ndarray]:
    """The task's prior fitted on the train rows, and its outputs for the rows the network trains on.

    The prior is fitted on every train row, up to ``prior_max_rows`` (random, by seed): the
    network's rows (``max_train_examples`` caps them, for its cost) are a subset of those, so a
    stronger prior is what the head builds on (recommend's gradient boosting on 327k rows
    rather than the network's 20k). The outputs are aligned with :meth:`TrainSplit.positions`
    of the whole run: out-of-fold for each row the prior was fitted on (it never sees the
    label it predicts), the fitted prior's for any other. A classical model holds its rows
    in memory: they are read as one frame here, and dropped after.
    """
    fitted_rows = kept_rows(train.total, task_config.prior_max_rows, seed)  # None: every row
    frame = with_derived(spec, train.read(fitted_rows))
    fitted, out_of_fold = fit_prior(
        spec, str(task_config.prior), frame, val, folds=task_config.prior_folds, seed=seed
    )
    network = train.positions()
    if fitted_rows is None:
        return fitted, out_of_fold[network]
    at = np.minimum(np.searchsorted(fitted_rows, network), len(fitted_rows) - 1)
    seen = fitted_rows[at] == network
    outputs = np.empty((len(network), out_of_fold.shape[1]), dtype=np.float32)
    outputs[seen] = out_of_fold[at[seen]]
    if not seen.all():
        outputs[~seen] = prior_outputs(spec, fitted, with_derived(spec, train.read(network[~seen])))
    return fitted, outputs
