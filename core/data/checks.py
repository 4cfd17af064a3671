"""The one check of a task's data: what ``shopmtl plugins check`` runs and ``train`` runs before step one.

:func:`check_splits` takes the splits a task's builder handed over and reads every row of
every split once, a chunk at a time (memory flat in the split's size):

* every split is there, is a split kind shopmtl reads, and has the schema's columns;
* every file of a Parquet split has those columns, of one type (the odd file named);
* every row's values: text is text, numeric inputs are finite numbers, labels are numbers
  that fit the task's kind (:class:`~shopmtl.core.data.valuecheck.ValueTally`);
* each split as a whole: rows in every split, labels in every split, both classes of a
  binary task in val and test;
* the feature state -- standardisation and vocabularies -- fitted on every train row,
  whatever ``max_train_examples`` keeps for the network.

It returns every problem at once, each a sentence naming the split, the column, the rows
(and the file), and the fix. Because both commands call this one function, ``plugins
check`` says ok exactly when ``train`` accepts the data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from shopmtl.core.data.features import FeatureFit, FeatureState
from shopmtl.core.data.valuecheck import ValueTally, file_locator
from shopmtl.registry.derived import with_derived
from shopmtl.registry.spec import SPLITS, TaskSpec
from shopmtl.registry.splits import (
    describe,
    file_problems,
    is_split_source,
    split_batches,
    split_columns,
    split_files,
)

__all__ = ["CHUNK_ROWS", "DataCheck", "check_splits"]

#: Rows read at a time.
CHUNK_ROWS = 100_000


@dataclass
class DataCheck:
    """What :func:`check_splits` found."""

    problems: list[str]
    #: The feature state fitted on every train row (``None`` when the train split could not be read).
    state: FeatureState | None = None
    #: Rows of each split read.
    rows: dict[str, int] = field(default_factory=dict)


def check_splits(
    spec: TaskSpec, splits: Mapping[str, Any], chunk_rows: int = CHUNK_ROWS
) -> DataCheck:
    """Check every split of ``spec``'s data (``TaskData.splits``) and fit the feature state on train."""
    result = DataCheck(problems=[])
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        result.problems.append(
            f"build_dataset returned no {', '.join(map(repr, missing))} split: return all of "
            f"{', '.join(SPLITS)} (e.g. split rows by a stable hash of an id)"
        )
    for split in SPLITS:
        if split in splits:
            problems = _schema_problems(spec, split, splits[split])
            if not problems:
                problems = _row_problems(spec, split, splits[split], chunk_rows, result)
            result.problems += problems
    return result


def _schema_problems(spec: TaskSpec, split: str, source: Any) -> list[str]:
    """The split's kind, its files and its columns, from the schema alone (no row read)."""
    if not is_split_source(source):
        return [
            f"the {split} split is {type(source).__name__}, not a pandas DataFrame, a pyarrow "
            "Table or Dataset, or the path of Parquet rows (a file, a folder or a list of files)"
        ]
    try:
        files = file_problems(source, spec.columns)
        columns = split_columns(source)
    except (OSError, ValueError) as exc:
        return [f"the {split} split: {exc}"]
    if files:
        return [f"the {split} split: {p}" for p in files]
    lacking = [c for c in spec.columns if c not in columns]
    if lacking:
        shown = ", ".join(map(repr, columns[:12])) + (", ..." if len(columns) > 12 else "")
        on_disk = isinstance(source, (str, os.PathLike, list, tuple))
        where = f" ({describe(source)})" if on_disk else ""
        return [
            f"the {split} split{where} lacks column(s) "
            f"{', '.join(map(repr, lacking))} that the TaskSpec names (it has {shown}): add them "
            "to the split, or fix the TaskSpec"
        ]
    return []


def _row_problems(
    spec: TaskSpec, split: str, source: Any, chunk_rows: int, result: DataCheck
) -> list[str]:
    """Read every row of the split once: its values checked, train's features fitted."""
    tally = ValueTally(spec, split, file_locator(split_files(source)))
    fit = FeatureFit(spec) if split == "train" else None
    columns = None if spec.derive is not None else list(dict.fromkeys(spec.columns))
    try:
        for frame in split_batches(source, chunk_rows, columns):
            frame = with_derived(spec, frame)  # the derived feature columns the model reads
            tally.add(frame)
            if fit is not None:
                fit.add(frame)
    except (OSError, ValueError, pa.ArrowException) as exc:  # a file unreadable, a derive failing
        return [f"the {split} split: {exc}"]
    result.rows[split] = tally.rows
    if fit is not None:
        result.state = fit.state()
    return tally.problems()
