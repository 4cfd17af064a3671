"""Turn a task's frame into arrays: text ids, standardised numerics, categorical indices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from shopmtl.core.data.priors import FittedPrior, prior_outputs
from shopmtl.core.data.textbank import TextBank
from shopmtl.registry.derived import with_derived
from shopmtl.registry.spec import TaskSpec


@dataclass
class EncodedRows:
    """A task split as arrays, row-aligned with its frame."""

    text_ids: np.ndarray  # (n,) int64 ids in the TextBank
    pair_ids: np.ndarray | None  # (n,) or None
    numeric: np.ndarray  # (n, n_numeric) float32, standardised, missing -> 0
    numeric_missing: np.ndarray  # (n, n_numeric) float32, 1 where missing
    categorical: np.ndarray  # (n, n_categorical) int64, 0 = unknown
    labels: np.ndarray  # (n, n_label_columns) float32, NaN = missing
    prior: np.ndarray | None = (
        None  # (n, n_outputs) float32 raw outputs of the task's prior, if any
    )

    def take(self, index: np.ndarray) -> EncodedRows:
        """The rows at positions ``index``, every array cut alike."""

        def cut(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[index]

        return EncodedRows(
            self.text_ids[index],
            cut(self.pair_ids),
            self.numeric[index],
            self.numeric_missing[index],
            self.categorical[index],
            self.labels[index],
            cut(self.prior),
        )

    def __len__(self) -> int:
        return len(self.text_ids)


@dataclass
class FeatureState:
    """What is learned from the train split and reused at evaluation and prediction.

    Saved with the model (``features.json``; a fitted prior beside it, ``priors/``) so
    ``predict`` transforms new rows the same way training did.
    """

    numeric_mean: list[float]
    numeric_std: list[float]
    vocabularies: list[list[str]]  # per categorical column; index 0 is "unknown"
    prior: FittedPrior | None = (
        None  # the task's classical prior fitted on all train rows (tasks.<name>.prior)
    )

    @classmethod
    def fit(cls, spec: TaskSpec, train: pd.DataFrame) -> FeatureState:
        """Standardisation constants and vocabularies from the train rows (one frame)."""
        return FeatureFit(spec).add(train).state()

    def cardinalities(self) -> tuple[int, ...]:
        """Vocabulary size of each categorical feature, the unknown slot included."""
        return tuple(len(v) for v in self.vocabularies)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able part; the fitted prior is saved on its own (:func:`~shopmtl.core.data.priors.save_prior`)."""
        data = {
            "numeric_mean": self.numeric_mean,
            "numeric_std": self.numeric_std,
            "vocabularies": self.vocabularies,
        }
        return {**data, "prior": self.prior.name} if self.prior is not None else data

    @classmethod
    def from_dict(cls, data: dict[str, Any], prior: FittedPrior | None = None) -> FeatureState:
        """The state :meth:`to_dict` wrote, with the fitted prior it names (loaded by the caller)."""
        return cls(data["numeric_mean"], data["numeric_std"], data["vocabularies"], prior)


class FeatureFit:
    """A :class:`FeatureState` fitted a chunk of rows at a time: every train row counts, and the
    memory it takes is the vocabularies', whatever the split's size.

    Means and standard deviations are merged chunk by chunk (Chan et al.'s pairwise update),
    so they equal pandas' ``mean()`` and ``std()`` (ddof 1) over all the rows.
    """

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        width = len(spec.numeric)
        self.count = np.zeros(width)
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)  # sum of squared deviations from the mean
        self.seen: list[set[str]] = [set() for _ in spec.categorical]

    def add(self, frame: pd.DataFrame) -> FeatureFit:
        """Fold ``frame``'s rows (derived feature columns computed) into the fit."""
        for j, column in enumerate(self.spec.numeric):
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
            values = values[np.isfinite(values)]  # an infinite input is refused by the checks
            n = len(values)
            if not n:
                continue
            mean = float(values.mean())
            m2 = float(((values - mean) ** 2).sum())
            total = self.count[j] + n
            delta = mean - self.mean[j]
            self.m2[j] += m2 + delta**2 * self.count[j] * n / total
            self.mean[j] += delta * n / total
            self.count[j] = total
        for j, column in enumerate(self.spec.categorical):
            self.seen[j].update(frame[column].dropna().astype(str).unique().tolist())
        return self

    def state(self) -> FeatureState:
        """The fitted state: a column without values gets mean 0, std 1."""
        means = [float(m) if n else 0.0 for m, n in zip(self.mean, self.count)]
        stds = []
        for m2, n in zip(self.m2, self.count):
            std = float(np.sqrt(m2 / (n - 1))) if n > 1 else 1.0
            stds.append(std if std > 1e-12 else 1.0)
        vocabularies = [["<unknown>", *sorted(seen)] for seen in self.seen]
        return FeatureState(means, stds, vocabularies)


def missing_columns(spec: TaskSpec, frame: pd.DataFrame, *, with_labels: bool = True) -> list[str]:
    """Columns the task's schema needs that ``frame`` lacks."""
    needed = spec.columns if with_labels else tuple(c for c in spec.columns if c not in spec.labels)
    return [c for c in needed if c not in frame.columns]


def encode_rows(
    spec: TaskSpec,
    frame: pd.DataFrame,
    state: FeatureState,
    bank: TextBank,
    prior: np.ndarray | None = None,
) -> EncodedRows:
    """Arrays for every row of ``frame``; labels absent from the frame become NaN.

    Derived feature columns (:attr:`TaskSpec.derive`) are computed here when the frame
    lacks them, so callers pass the raw inputs only. With a fitted prior in ``state`` its
    outputs are computed too, unless ``prior`` gives them (the train rows' out-of-fold ones).
    """
    if spec.derive is not None and any(c not in frame.columns for c in spec.derive.columns):
        frame = with_derived(spec, frame)
    n = len(frame)
    numeric = np.zeros((n, len(spec.numeric)), dtype=np.float32)
    missing = np.zeros_like(numeric)
    for j, column in enumerate(spec.numeric):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        absent = np.isnan(values)
        numeric[:, j] = np.where(
            absent, 0.0, (values - state.numeric_mean[j]) / state.numeric_std[j]
        )
        missing[:, j] = absent
    categorical = np.zeros((n, len(spec.categorical)), dtype=np.int64)
    for j, column in enumerate(spec.categorical):
        index = {value: k for k, value in enumerate(state.vocabularies[j])}
        categorical[:, j] = [index.get(str(v), 0) for v in frame[column]]
    labels = np.full((n, len(spec.labels)), np.nan, dtype=np.float32)
    for j, column in enumerate(spec.labels):
        if column in frame.columns:
            labels[:, j] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float32)
    return EncodedRows(
        text_ids=bank.ids_for(frame[spec.text].tolist()),
        pair_ids=bank.ids_for(frame[spec.text_pair].tolist()) if spec.text_pair else None,
        numeric=numeric,
        numeric_missing=missing,
        categorical=categorical,
        labels=labels,
        prior=prior
        if prior is not None or state.prior is None
        else prior_outputs(spec, state.prior, frame),
    )
