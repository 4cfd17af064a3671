"""``basket_size``: how many distinct products will this invoice hold?

A regression of ``log1p(number of distinct products in an invoice)`` from the
description of the invoice's first product: the shared encoder has to learn that
"JUMBO BAG RED RETROSPOT" opens wholesale baskets and "REGENCY CAKESTAND 3 TIER" small
ones. One row per invoice of the cleaned Online Retail table
(:func:`shopmtl.retail.load_transactions`), split by a stable hash of the
invoice number (:func:`shopmtl.retail.split_of`): 80% train, 10% val, 10% test.

Everything shopmtl needs is in :data:`BASKET_SIZE` and the ``register_tasks`` hook at
the bottom; the entry point in ``pyproject.toml`` points at this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from shopmtl import BuildContext, EvalBatch, TaskData, TaskSpec, hookimpl, log1p_regression_metrics

#: The hook API this plugin is written for; shopmtl refuses it if the major differs.
SHOPMTL_HOOK_API = "1.5"


@dataclass(frozen=True)
class BasketSettings:
    """``tasks.basket_size.settings`` in a shopmtl config."""

    #: Keep at most this many invoices per split (``0`` = all), for quick experiments.
    max_invoices: int = 0

    def __post_init__(self) -> None:
        if self.max_invoices < 0:
            raise ValueError(
                f"basket_size settings: max_invoices={self.max_invoices} must be >= 0 (0 = all)"
            )


def build_basket_size(ctx: BuildContext) -> TaskData:
    """One row per invoice: its first product's description and ``log1p`` of its distinct products."""
    from shopmtl import retail  # shopmtl's public loader: same cleaning as the built-ins

    settings: BasketSettings = ctx.settings or BasketSettings()
    clean = retail.load_transactions(ctx.data_path, ctx.column_map)
    invoices = clean.groupby("invoice", sort=False).agg(
        description=("product_description", "first"),  # file order: the invoice's first line
        n_products=("stock_code", "nunique"),
    )
    frame = pd.DataFrame(
        {
            "invoice": invoices.index.to_numpy(dtype=str),
            "description": invoices["description"].to_numpy(dtype=str),
            "label": np.log1p(invoices["n_products"].to_numpy(dtype=float)),
        }
    )
    split = frame["invoice"].map(retail.split_of)
    splits = {}
    for name in ("train", "val", "test"):
        part = frame[split == name].reset_index(drop=True)
        if settings.max_invoices:
            part = part.head(settings.max_invoices)
        splits[name] = part
    return TaskData(splits=splits)


METRIC_DIRECTIONS: dict[str, str] = {
    "rmse": "min",
    "mae": "min",
    "mae_products": "min",
    "r2": "max",
}


def basket_metrics(batch: EvalBatch) -> dict[str, float]:
    """RMSE and MAE on the log1p scale, MAE in products, R²; missing labels skipped."""
    return log1p_regression_metrics(batch.labels, batch.predictions, unit="products")


def decode_basket_size(predictions: np.ndarray) -> pd.DataFrame:
    """``prediction`` (log1p, as the model outputs it) and ``products`` (expm1 of it, >= 1)."""
    # p[:, 0], not p.reshape(len(p), -1): numpy cannot infer a width of zero rows, and
    # decode must take zero rows (serve lists a task's outputs by decoding none).
    value = np.asarray(predictions, dtype=float)
    value = value[:, 0] if value.ndim > 1 else value
    return pd.DataFrame({"prediction": value, "products": np.maximum(np.expm1(value), 1.0)})


def basket_baselines(data: TaskData, split: str) -> dict[str, dict[str, float]]:
    """The train mean and median of the label, scored on ``split``."""
    train = data["train"]["label"].to_numpy(dtype=float)
    constants: dict[str, float] = {
        "train_mean": float(np.mean(train)),
        "train_median": float(np.median(train)),
    }
    frame = data[split]

    def evaluate(value: float) -> dict[str, float]:
        predict: Callable[[pd.DataFrame], np.ndarray] = lambda f: np.full((len(f), 1), value)  # noqa: E731
        return basket_metrics(
            EvalBatch(
                split=split,
                frame=frame,
                predictions=predict(frame),
                labels=frame[["label"]].to_numpy(dtype=float),
                score=predict,
            )
        )

    return {name: evaluate(value) for name, value in constants.items()}


BASKET_SIZE = TaskSpec(
    name="basket_size",
    kind="regression",
    description="Distinct products per invoice (log1p), from the invoice's first product description",
    text="description",
    labels=("label",),
    build_dataset=build_basket_size,
    metrics=basket_metrics,
    metric_directions=METRIC_DIRECTIONS,
    primary_metric="rmse",
    keys=("invoice",),
    settings=BasketSettings,
    decode=decode_basket_size,
    baselines=basket_baselines,
)


@hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Register the ``basket_size`` task."""
    register(BASKET_SIZE)
