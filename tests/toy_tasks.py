"""Tiny synthetic tasks for engine tests: no data files, seconds to train."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from shopmtl import BuildContext, EvalBatch, TaskData, TaskSpec, hookimpl
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score

WORDS = ["red", "blue", "green", "large", "small", "mug", "bag", "card", "heart", "glass"]


@dataclass
class ToySettings:
    """How many rows per split, and how noisy the labels are."""

    rows: int = 240
    noise: float = 0.1


def _frame(n: int, seed: int, noise: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(WORDS), n)
    b = rng.integers(0, len(WORDS), n)
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "row_id": np.arange(n),
            "text": [f"{WORDS[i]} {WORDS[j]}" for i, j in zip(a, b)],
            "other": [WORDS[j] for j in b],
            "x": np.where(rng.random(n) < 0.1, np.nan, x),
            "shop": rng.choice(["uk", "fr", "de"], n),
        }
    )
    frame["value"] = (a % 3) + np.nan_to_num(frame["x"]) + rng.normal(scale=noise, size=n)
    frame["flag"] = ((a % 2) == 0).astype(float)
    return frame


def build(ctx: BuildContext) -> TaskData:
    settings = ctx.settings or ToySettings()
    return TaskData(
        {
            split: _frame(
                settings.rows if split == "train" else settings.rows // 3, seed, settings.noise
            )
            for split, seed in (("train", 1), ("val", 2), ("test", 3))
        }
    )


def regression_metrics(batch: EvalBatch) -> dict[str, float]:
    keep = ~np.isnan(batch.labels[:, 0])
    return {
        "rmse": float(
            np.sqrt(mean_squared_error(batch.labels[keep, 0], batch.predictions[keep, 0]))
        )
    }


def binary_metrics(batch: EvalBatch) -> dict[str, float]:
    keep = ~np.isnan(batch.labels[:, 0])
    y, p = batch.labels[keep, 0], batch.predictions[keep, 0]
    return {"auc": float(roc_auc_score(y, p)), "accuracy": float(accuracy_score(y, p >= 0.5))}


TOY_REGRESSION = TaskSpec(
    name="toy_value",
    kind="regression",
    description="toy regression",
    text="text",
    labels=("value",),
    numeric=("x",),
    categorical=("shop",),
    keys=("row_id",),
    build_dataset=build,
    metrics=regression_metrics,
    metric_directions={"rmse": "min"},
    primary_metric="rmse",
    settings=ToySettings,
)
TOY_BINARY = TaskSpec(
    name="toy_flag",
    kind="binary",
    description="toy pair classification",
    text="text",
    text_pair="other",
    labels=("flag",),
    build_dataset=build,
    metrics=binary_metrics,
    metric_directions={"auc": "max", "accuracy": "max"},
    primary_metric="auc",
)


@hookimpl
def register_tasks(register):
    register(TOY_REGRESSION)
    register(TOY_BINARY)
