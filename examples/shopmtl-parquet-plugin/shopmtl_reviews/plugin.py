"""The ``review_rating`` task: a review's star rating (1-5) from its text, category and price.

Its data ships in the wheel as Parquet splits (``data/``): train is a folder of three
files, val and test one file each. The builder hands shopmtl the paths; shopmtl checks
every file's schema and every row (``shopmtl plugins check reviews``, and ``train``
before its first step, run the same check) and reads the rows a chunk at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from shopmtl import BuildContext, EvalBatch, TaskData, TaskSpec, hookimpl, split_frame

#: The hook API this plugin is written for (shopmtl.HOOK_API_VERSION when it was written).
SHOPMTL_HOOK_API = "1.5"

#: The bundled splits, beside this module in the installed package (not the config's
#: ``data.path``: that names the built-in tasks' transactions table).
DATA = Path(__file__).parent / "data"


def build_reviews(ctx: BuildContext) -> TaskData:
    """The bundled splits, as paths: shopmtl reads Parquet itself, memory-mapped."""
    return TaskData(
        {"train": DATA / "train", "val": DATA / "val.parquet", "test": DATA / "test.parquet"},
        sources=sorted(str(p) for p in DATA.rglob("*.parquet")),
    )


def rating_metrics(batch: EvalBatch) -> dict[str, float]:
    """MAE and RMSE in stars, and how often the rounded prediction is the rating; NaN labels skipped."""
    labels = np.asarray(batch.labels, dtype=float)[:, 0]
    predictions = np.asarray(batch.predictions, dtype=float)[:, 0]
    keep = ~np.isnan(labels)
    if not keep.any():
        return {"mae": float("nan"), "rmse": float("nan"), "exact": float("nan")}
    error = predictions[keep] - labels[keep]
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "exact": float((np.clip(np.round(predictions[keep]), 1, 5) == labels[keep]).mean()),
    }


def decode_rating(predictions: np.ndarray) -> pd.DataFrame:
    """``stars`` (the prediction) and ``stars_rounded`` (1-5); takes zero rows, as serve asks."""
    value = np.asarray(predictions, dtype=float)
    value = value[:, 0] if value.ndim > 1 else value
    return pd.DataFrame({"stars": value, "stars_rounded": np.clip(np.round(value), 1, 5)})


def rating_baselines(data: TaskData, split: str) -> dict[str, dict[str, float]]:
    """The train mean rating for every row (read with the public split helper)."""
    mean = float(split_frame(data.splits["train"], ["rating"])["rating"].mean())
    frame = data[split]
    labels = frame[["rating"]].to_numpy(dtype=float)
    batch = EvalBatch(
        split=split,
        frame=frame,
        predictions=np.full_like(labels, mean),
        labels=labels,
        score=lambda rows: np.full((len(rows), 1), mean),
    )
    return {"train_mean": rating_metrics(batch)}


REVIEW_RATING = TaskSpec(
    name="review_rating",
    kind="regression",
    description="a review's star rating (1-5) from its text, category and price",
    text="review",
    labels=("rating",),
    numeric=("price",),  # missing on some rows; predict may leave the column out entirely
    categorical=("category",),
    keys=("review_id",),
    build_dataset=build_reviews,
    metrics=rating_metrics,
    metric_directions={"mae": "min", "rmse": "min", "exact": "max"},
    primary_metric="mae",
    decode=decode_rating,
    baselines=rating_baselines,
)


@hookimpl
def register_tasks(register):
    register(REVIEW_RATING)
