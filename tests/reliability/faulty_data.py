"""A plugin of tasks whose data or decode is wrong in one way each, for ``plugins check`` and ``train``.

The faults a plugin author who brings their own data meets: one Parquet file of a split
unlike the others, a bad value on a row that ``max_train_examples`` does not keep, labels
missing from a whole split, a decode that cannot take zero rows. Parquet splits are
written under :data:`ROOT` (a fresh temporary folder per test process).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from shopmtl import BuildContext, TaskData, hookimpl
from shopmtl.core.data.trainsplit import kept_rows
from toy_tasks import TOY_BINARY, TOY_REGRESSION, build

ROOT = Path(tempfile.mkdtemp(prefix="shopmtl-faulty-data-"))
#: ``max_train_examples`` the train cases run with: the faulty row is never among the kept ones.
SAMPLE = 20


def outside_sample(ctx: BuildContext, rows: int) -> int:
    """A train row that a cap of :data:`SAMPLE` rows (seeded as the run is) does not keep."""
    kept = set(kept_rows(rows, SAMPLE, ctx.seed).tolist())
    return next(r for r in range(rows - 1, -1, -1) if r not in kept)


def parquet_train(name: str, frames: dict, change=None) -> TaskData:
    """The toy splits with train written as three Parquet files; ``change(k, part)`` alters file k."""
    folder = ROOT / name / "train"
    folder.mkdir(parents=True, exist_ok=True)
    train, third = frames["train"], len(frames["train"]) // 3
    for k in range(3):
        part = train.iloc[k * third : (k + 1) * third if k < 2 else None].reset_index(drop=True)
        (change(k, part) if change else part).to_parquet(folder / f"part-{k}.parquet", index=False)
    return TaskData({**frames, "train": str(folder)})


def _at(split: str, column: str, value, row=None):
    """A builder setting ``column`` of ``split`` to ``value`` on ``row`` (one outside the sample;
    ``"all"``: every row)."""

    def builder(ctx: BuildContext) -> TaskData:
        frames = build(ctx).splits
        frame = frames[split]
        if row == "all":
            frame[column] = value
        else:
            at = outside_sample(ctx, len(frame)) if row is None else row
            frame[column] = frame[column].astype(object)
            frame.loc[at, column] = value
        return TaskData(frames)

    return builder


def _missing_in_one_file(ctx):
    return parquet_train(
        "missing", build(ctx).splits, lambda k, p: p.drop(columns="x") if k == 1 else p
    )


def _retyped_in_one_file(ctx):
    return parquet_train(
        "retyped", build(ctx).splits, lambda k, p: p.assign(x=p["x"].astype(str)) if k == 2 else p
    )


def _retyped_first_file(ctx):
    return parquet_train(
        "first", build(ctx).splits, lambda k, p: p.assign(x=p["x"].astype(str)) if k == 0 else p
    )


def _label_two_in_a_file(ctx):
    def change(k, part):
        if k == 1:
            part.loc[7, "flag"] = 2.0
        return part

    return parquet_train("label_two", build(ctx).splits, change)


def _val_lacks_a_column(ctx):
    frames = build(ctx).splits
    frames["val"] = frames["val"].drop(columns="shop")
    return TaskData(frames)


def _empty_val(ctx):
    frames = build(ctx).splits
    frames["val"] = frames["val"].iloc[:0]
    return TaskData(frames)


def decode_by_reshape(predictions: np.ndarray) -> pd.DataFrame:
    value = np.asarray(predictions, dtype=float).reshape(len(predictions), -1)[:, 0]
    return pd.DataFrame({"prediction": value})


def decode_onto_input(predictions: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"x": np.asarray(predictions, dtype=float)[:, 0]})


def _task(base, name: str, builder=None, **changes):
    if builder is not None:
        changes["build_dataset"] = builder
    return dataclasses.replace(base, name=name, **changes)


TASKS = (
    _task(TOY_REGRESSION, "file_missing_x", _missing_in_one_file),
    _task(TOY_REGRESSION, "file_retyped_x", _retyped_in_one_file),
    _task(TOY_REGRESSION, "first_file_retyped_x", _retyped_first_file),
    _task(TOY_REGRESSION, "val_lacks_shop", _val_lacks_a_column),
    _task(TOY_REGRESSION, "inf_label_unsampled", _at("train", "value", np.inf)),
    _task(TOY_REGRESSION, "inf_input_unsampled", _at("train", "x", -np.inf)),
    _task(TOY_REGRESSION, "words_in_x_unsampled", _at("train", "x", "12 units")),
    _task(TOY_REGRESSION, "text_none_unsampled", _at("train", "text", None)),
    _task(TOY_BINARY, "word_label_unsampled", _at("train", "flag", "yes")),
    _task(TOY_BINARY, "label_two_in_file", _label_two_in_a_file),
    _task(TOY_REGRESSION, "nan_val_labels", _at("val", "value", np.nan, "all")),
    _task(TOY_REGRESSION, "nan_test_labels", _at("test", "value", np.nan, "all")),
    _task(TOY_REGRESSION, "nan_train_labels", _at("train", "value", np.nan, "all")),
    _task(TOY_BINARY, "one_class_val", _at("val", "flag", 0.0, "all")),
    _task(TOY_REGRESSION, "empty_val", _empty_val),
    _task(TOY_REGRESSION, "decode_no_rows", decode=decode_by_reshape),
    _task(TOY_REGRESSION, "decode_onto_x", decode=decode_onto_input),
)


@hookimpl
def register_tasks(register):
    for task in TASKS:
        register(task)


class Future:
    """A plugin written for a hook API shopmtl does not provide."""

    SHOPMTL_HOOK_API = "2.0"

    @hookimpl
    def register_tasks(self, register):
        register(_task(TOY_REGRESSION, "future_value"))
