"""What the values of one split must be, checked a chunk of rows at a time.

A string in a label column trains the whole run with ``auc=None`` at every validation; an
infinite number in a numeric column turns the loss into NaN several steps later. Checking
every row once, before the first step, says what is wrong and where instead.

:class:`ValueTally` folds chunks in and then words each fault once for the whole split:
how many rows, a few of the values, the first rows (and the file they are in, for a
Parquet split). ``shopmtl plugins check`` and a training run both use it through
:func:`shopmtl.core.data.checks.check_splits`, so they refuse the same data with the
same words. Light: pandas and numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from shopmtl.registry.spec import TaskSpec

__all__ = ["ValueTally", "check_frame", "file_locator"]

_EXAMPLES = 3  # offending values (and rows) quoted in a message

#: ``rows -> words``: where rows of a split are (``"rows 5, 9"``, with their file when on disk).
Locator = Callable[[Sequence[int], int], str]


@dataclass
class _Found:
    """One kind of fault in one column: how often, a few values, the first rows."""

    count: int = 0
    examples: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def add(self, bad: pd.Series) -> None:
        self.count += len(bad)
        for value in bad.iloc[: _EXAMPLES * 4]:
            shown = _show(value)
            if shown not in self.examples and len(self.examples) < _EXAMPLES:
                self.examples.append(shown)
        self.rows += [int(i) for i in bad.index[: _EXAMPLES - len(self.rows)]]


@dataclass
class _Labels:
    """A label column over the split: rows with a label, and up to two distinct label values."""

    present: int = 0
    values: set[float] = field(default_factory=set)


class ValueTally:
    """Every value fault of one split, gathered chunk by chunk (each chunk indexed by row position)."""

    def __init__(self, spec: TaskSpec, split: str, locate: Locator | None = None) -> None:
        self.spec, self.split = spec, split
        self.locate = locate or _rows
        self.rows = 0
        self.found: dict[tuple[str, str], _Found] = {}
        self.labels = {column: _Labels() for column in spec.labels}

    def _tally(self, fault: str, column: str, bad: pd.Series) -> None:
        if len(bad):
            self.found.setdefault((fault, column), _Found()).add(bad)

    def add(self, frame: pd.DataFrame) -> None:
        """Check ``frame``'s rows (derived feature columns computed)."""
        self.rows += len(frame)
        spec = self.spec
        for column in (spec.text, *((spec.text_pair,) if spec.text_pair else ())):
            values = frame[column]
            self._tally("text", column, values[~values.map(lambda v: isinstance(v, str))])
        for column in spec.numeric:
            bad = _non_numeric(frame[column])
            self._tally("numeric-word", column, bad)
            numbers = pd.to_numeric(frame[column], errors="coerce").astype("float64")
            self._tally("numeric-inf", column, numbers[np.isinf(numbers)])
        for column in spec.labels:
            self._add_labels(column, frame[column])

    def _add_labels(self, column: str, values: pd.Series) -> None:
        bad = _non_numeric(values)
        self._tally("label-word", column, bad)
        numbers = pd.to_numeric(values, errors="coerce").astype("float64").dropna()
        tally = self.labels[column]
        tally.present += len(numbers)
        if len(tally.values) < 2:
            tally.values.update(numbers.unique()[:2].tolist())
        kind = self.spec.kind
        if kind == "regression":
            self._tally("label-inf", column, numbers[~np.isfinite(numbers)])
        elif kind in ("binary", "multilabel"):
            self._tally("label-01", column, numbers[~numbers.isin((0.0, 1.0))])
        elif kind == "multiclass":
            n = len(self.spec.classes)
            self._tally(
                "label-class",
                column,
                numbers[(numbers != np.floor(numbers)) | (numbers < 0) | (numbers >= n)],
            )

    def problems(self) -> list[str]:
        """Each fault once, in words with the fix; then what the split as a whole lacks."""
        words = [self._words(fault, column, found) for (fault, column), found in self.found.items()]
        return words + self._split_problems()

    def _words(self, fault: str, column: str, found: _Found) -> str:
        split, n = self.split, _count(found.count, "row")
        rows = self.locate(found.rows, found.count)
        examples = ", ".join(found.examples)
        if fault == "text":
            return (
                f"text column {column!r} of the {split} split is not a string on {n} "
                f"(e.g. {examples}), {rows}: the encoder needs text -- fill missing text with '' "
                "and convert others with .astype(str)"
            )
        if fault == "numeric-word":
            return (
                f"numeric column {column!r} of the {split} split is not a number on {n} "
                f"(e.g. {examples}), {rows}: those would silently become missing -- convert them, "
                "or list the column in categorical= instead"
            )
        if fault == "numeric-inf":
            return (
                f"numeric column {column!r} of the {split} split is infinite on {n} ({rows}): an "
                "input that overflowed (a value beyond float64) trains to NaN -- fix or drop those "
                "rows, or use NaN for a missing value"
            )
        return self._label_words(fault, column, n, rows, examples)

    def _label_words(self, fault: str, column: str, n: str, rows: str, examples: str) -> str:
        where = f"label column {column!r} of the {self.split} split"
        if fault == "label-word":
            hint = " (the class index, not its name)" if self.spec.kind == "multiclass" else ""
            return (
                f"{where} is not a number on {n} (e.g. {examples}), {rows}: labels must be "
                f"numbers{hint}; use NaN for a missing label"
            )
        if fault == "label-inf":
            return (
                f"{where} is infinite on {n} ({rows}): use NaN for a missing label, and clip or "
                "transform (e.g. log1p) extreme values"
            )
        if fault == "label-01":
            return (
                f"{where} is not 0 or 1 on {n} (e.g. {examples}), {rows}: a {self.spec.kind} "
                "label is 0, 1, or NaN when missing"
            )
        classes = tuple(self.spec.classes)
        return (
            f"{where} is not a class index 0..{len(classes) - 1} on {n} (e.g. {examples}), "
            f"{rows}: the label is the position of the class in classes={classes!r}"
        )

    def _split_problems(self) -> list[str]:
        split = self.split
        if not self.rows:
            if split == "train":
                return [
                    "the train split has no rows: a task needs training rows (check the "
                    "builder and its settings)"
                ]
            return [
                f"the {split} split has no rows: evaluation needs some -- give {split} a share "
                "of the rows"
            ]
        problems = []
        for column, tally in self.labels.items():
            if any(fault == "label-word" and c == column for fault, c in self.found):
                continue  # already said: its values are not numbers
            if not tally.present:
                purpose = "the task cannot learn" if split == "train" else "no metric can be scored"
                problems.append(
                    f"label column {column!r} of the {split} split is missing (NaN) on every "
                    f"row ({self.rows:,}): {purpose} -- check how the builder fills the labels"
                )
            elif self.spec.kind == "binary" and split != "train" and len(tally.values) < 2:
                problems.append(
                    f"label column {column!r} of the {split} split is "
                    f"{_show(next(iter(tally.values)))} on every labelled row: AUC cannot be "
                    f"scored on one class -- give {split} rows of both classes"
                )
        return problems


def check_frame(
    spec: TaskSpec, split: str, frame: pd.DataFrame, *, require_labels: bool = True
) -> list[str]:
    """Every value problem of one split held as one frame (see :class:`ValueTally`).

    ``require_labels`` is accepted for callers of the old path and ignored: a label column
    missing on every row is refused in every split, by ``train`` as by ``plugins check``.
    """
    tally = ValueTally(spec, split)
    tally.add(frame)
    return tally.problems()


def file_locator(files: Sequence[tuple[str, int]]) -> Locator:
    """Where rows of a split made of ``files`` (``(path, rows)``, in scan order) are, in words."""
    if not files:
        return _rows
    ends = np.cumsum([rows for _, rows in files])

    def locate(rows: Sequence[int], count: int) -> str:
        words = _rows(rows, count)
        if not rows:
            return words
        at = int(np.searchsorted(ends, rows[0], side="right"))
        start = int(ends[at - 1]) if at else 0
        return f"{words} (the first in {files[at][0]}, its row {rows[0] - start})"

    return locate


def _rows(rows: Sequence[int], count: int) -> str:
    shown = ", ".join(str(i) for i in rows[:_EXAMPLES])
    if count == 1:
        return f"row {shown}"
    return f"rows {shown}" + (", ..." if count > _EXAMPLES else "")


def _non_numeric(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.iloc[:0]
    numbers = pd.to_numeric(values, errors="coerce")
    return values[numbers.isna() & values.notna()]


def _show(value: Any) -> str:
    value = value.item() if hasattr(value, "item") else value
    if value is None or (isinstance(value, float) and value != value):
        return "NaN"  # None and NaN alike: pandas turns one into the other
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
