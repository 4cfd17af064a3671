"""Classical priors (:class:`~shopmtl.registry.spec.Prior`): fitted once per run, read as offsets.

A prior is a classical model the head starts from: its raw output is added to the head's,
so the network learns a residual over it. Fitting it on the rows the head trains on and
reading its predictions on those same rows would hand the head a prior that already knows
each label; the train rows therefore get *out-of-fold* predictions (each fold's rows from
a prior fitted without them), and every other frame -- val, test, ``predict`` input -- gets
the prior fitted on all train rows. That is stacking without leakage (Wolpert, 1992).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from shopmtl.registry.spec import Prior, PriorState, TaskSpec


@dataclass
class FittedPrior:
    """A task's prior as one run fitted it: its name in ``TaskSpec.priors``, the fitted model
    and its state, what the run saves (:mod:`shopmtl.core.data.priorfile`)."""

    name: str
    model: Any  # what Prior.fit returned on all train rows (None for a prior with nothing to fit)
    state: PriorState | None = None  # Prior.state of model; None when model is None


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
    return _as_saved(spec, name, prior, _fit(spec, name, prior, train, val)), oof


def prior_outputs(spec: TaskSpec, fitted: FittedPrior, frame: pd.DataFrame) -> np.ndarray:
    """``(len(frame), n_outputs)`` float32 raw outputs of the fitted prior on ``frame``'s rows."""
    return _outputs(spec, fitted.name, chosen_prior(spec, fitted.name), fitted.model, frame)


def _as_saved(spec: TaskSpec, name: str, prior: Prior, model: Any) -> FittedPrior:
    """The fitted prior as the run will save and reopen it: ``model`` through ``Prior.state``
    and back through ``Prior.from_state``, so what the run predicts with is what it saves."""
    if model is None:
        return FittedPrior(name, None)
    if prior.state is None or prior.from_state is None:
        raise PriorError(
            f"task '{spec.name}': prior {name!r} fitted a {type(model).__name__} but declares no "
            "Prior.state and Prior.from_state (hook API 1.5): a fitted prior is saved as arrays and "
            "JSON, never pickled; give the Prior both"
        )
    try:
        state = checked_state(spec.name, name, prior.state(model))
        return FittedPrior(name, prior.from_state(state), state)
    except PriorError:
        raise
    except Exception as error:  # a plugin's code: name the task and prior, keep the cause
        raise PriorError(
            f"task '{spec.name}': prior {name!r} cannot be saved as arrays and JSON "
            f"({type(error).__name__}: {error}); fix its Prior.state / Prior.from_state"
        ) from error


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


def checked_state(task: str, name: str, state: Any) -> PriorState:
    """``state`` if it is a :class:`PriorState` of numeric arrays and JSON, else one line saying what is wrong."""
    where = f"task '{task}': prior {name!r}'s Prior.state"
    if not isinstance(state, PriorState):
        raise PriorError(f"{where} returned a {type(state).__name__}, not a PriorState")
    for key, array in state.arrays.items():
        if not isinstance(key, str) or not key or not all(c.isalnum() or c in "._" for c in key):
            raise PriorError(f"{where}: array name {key!r} is not letters, digits, '_' and '.'")
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
            kind = getattr(getattr(array, "dtype", None), "name", type(array).__name__)
            raise PriorError(
                f"{where}: array {key!r} is {kind}, not a numeric or boolean numpy array "
                "(put words and labels in PriorState.meta)"
            )
    try:
        json.dumps(state.meta, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise PriorError(f"{where}: meta is not JSON ({error})") from None
    return state
