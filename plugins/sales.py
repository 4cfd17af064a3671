"""``sales``: regression of a product's weekly units (TASKS.md, task 1).

One row per (product, week) from the product's first week with a sale (at the earliest
``first_week``) to the last test week, zero weeks included. Target ``log1p(units)``;
inputs the product description, its log units in the 4 previous weeks and its median
price over the train price weeks. Split by time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shopmtl import hookimpl
from shopmtl.plugins import retail
from shopmtl.registry.contract import BuildContext, EvalBatch, Register, TaskData, TaskSpec

#: A baseline: rows -> predictions (the task's activated outputs).
Predictor = Callable[[pd.DataFrame], np.ndarray]

#: Lag features ``lag_1`` ... ``lag_4``: log1p units 1-4 weeks before the row's week.
N_LAGS = 4
LAG_COLUMNS: tuple[str, ...] = tuple(f"lag_{k}" for k in range(1, N_LAGS + 1))

WeekRange = tuple[pd.Timestamp, pd.Timestamp]


@dataclass(frozen=True)
class SalesSettings:
    """Dates of the ``sales`` task; every week is named by its Monday (ISO ``YYYY-MM-DD``).

    The defaults are TASKS.md's for the 2010-2011 file; shift them for another period.
    """

    #: First week with rows. Earlier weeks only feed the lags, so the data's left edge
    #: does not pose as every product's first week.
    first_week: str = "2011-01-03"
    #: First and last validation week (inclusive). Train is every week before it.
    val_weeks: tuple[str, str] = ("2011-08-15", "2011-10-03")
    #: First and last test week (inclusive); the last is the last week with rows, which
    #: drops the partial week after it (2011-12-05).
    test_weeks: tuple[str, str] = ("2011-10-10", "2011-11-28")
    #: Weeks whose rows give the product's median price (train weeks only, no leak).
    price_weeks: tuple[str, str] = ("2011-01-03", "2011-08-08")

    def __post_init__(self) -> None:
        named = {
            "first_week": self.first_week,
            "val_weeks[0]": self.val_weeks[0],
            "val_weeks[1]": self.val_weeks[1],
            "test_weeks[0]": self.test_weeks[0],
            "test_weeks[1]": self.test_weeks[1],
            "price_weeks[0]": self.price_weeks[0],
            "price_weeks[1]": self.price_weeks[1],
        }
        for name, value in named.items():
            week = pd.Timestamp(value)  # raises on a malformed date
            if week.day_of_week != 0:
                raise ValueError(f"sales settings: {name}={value} is a {week.day_name()}; name each week by its Monday")
        first, (val_start, val_end), (test_start, test_end), (price_start, price_end) = self.weeks()
        if not first <= val_start <= val_end < test_start <= test_end:
            raise ValueError(
                "sales settings: need first_week <= val_weeks[0] <= val_weeks[1] < test_weeks[0] <= test_weeks[1]"
            )
        if not price_start <= price_end < val_start:
            raise ValueError("sales settings: price_weeks must be an ordered range of train weeks (before val_weeks)")

    def weeks(self) -> tuple[pd.Timestamp, WeekRange, WeekRange, WeekRange]:
        """``(first_week, val_weeks, test_weeks, price_weeks)`` as timestamps."""

        def pair(weeks: tuple[str, str]) -> WeekRange:
            return pd.Timestamp(weeks[0]), pd.Timestamp(weeks[1])

        return pd.Timestamp(self.first_week), pair(self.val_weeks), pair(self.test_weeks), pair(self.price_weeks)


def week_start(dates: pd.Series) -> pd.Series:
    """Monday 00:00 of each date's week: ``dates.dt.to_period("W-SUN").start_time``, vectorised."""
    days = dates.dt.normalize()
    return days - pd.to_timedelta(days.dt.day_of_week, unit="D")


def build_sales(ctx: BuildContext) -> TaskData:
    """The ``sales`` rows of the context's file, split by week."""
    settings: SalesSettings = ctx.settings or SalesSettings()
    first, (val_start, val_end), (test_start, last), (price_start, price_end) = settings.weeks()
    clean = retail.load_transactions(ctx.data_path, ctx.column_map)
    rows = pd.DataFrame(
        {
            "stock_code": clean["stock_code"],
            "week": week_start(clean["invoice_date"]),
            "quantity": clean["quantity"],
            "unit_price": clean["unit_price"],
        }
    )

    # Products with a row: a first sale on or before the last week (a product first sold in
    # the dropped partial week has none).
    first_sale = rows.groupby("stock_code")["week"].min()
    first_sale = first_sale[first_sale <= last].sort_index()
    products = first_sale.index

    # Dense (product x week) matrix of units, from N_LAGS weeks before `first` to `last`;
    # weeks with no sale (and weeks before the first sale) hold 0, as the lags require.
    weeks = pd.date_range(first - pd.Timedelta(weeks=N_LAGS), last, freq="7D")
    in_range = rows["week"].between(weeks[0], weeks[-1]) & rows["stock_code"].isin(products)
    weekly = rows[in_range].groupby(["stock_code", "week"])["quantity"].sum()
    units = np.zeros((len(products), len(weeks)))
    product_row = products.get_indexer(weekly.index.get_level_values("stock_code"))
    week_column = weeks.get_indexer(weekly.index.get_level_values("week"))
    units[product_row, week_column] = weekly.to_numpy()
    log_units = np.log1p(units)

    # Row (product p, week j) exists from max(first sale, first) onwards.
    row_weeks = weeks[N_LAGS:]
    start = np.maximum(first_sale.to_numpy(), np.datetime64(first))
    p_idx, w_idx = np.nonzero(row_weeks.to_numpy()[None, :] >= start[:, None])
    j = w_idx + N_LAGS  # column in `weeks`
    price = _median_price(rows, price_start, price_end)
    descriptions = retail.product_descriptions(clean)

    frame = pd.DataFrame(
        {
            "stock_code": products.to_numpy()[p_idx],
            "week": row_weeks.to_numpy()[w_idx],
            "description": descriptions.reindex(products).to_numpy()[p_idx],
            **{col: log_units[p_idx, j - k] for k, col in enumerate(LAG_COLUMNS, start=1)},
            "median_price": price.reindex(products).to_numpy(dtype=float)[p_idx],
            "label": log_units[p_idx, j],
        }
    )
    week = frame["week"]
    split = np.select(
        [week.between(test_start, last), week.between(val_start, val_end), week < val_start],
        ["test", "val", "train"],
        default="",  # weeks between val and test when they are not adjacent: no split
    )
    return TaskData(splits={s: frame[split == s].reset_index(drop=True) for s in ("train", "val", "test")})


def _median_price(rows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Median UnitPrice over each product's rows in weeks ``start`` ... ``end``."""
    in_weeks = rows["week"].between(start, end)
    return rows[in_weeks].groupby("stock_code")["unit_price"].median()


def sales_metrics(batch: EvalBatch) -> dict[str, float]:
    """RMSE, MAE (log1p scale), MAE in units and R²; predictions clipped at 0 first."""
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    y = np.asarray(batch.labels, dtype=float).reshape(len(batch.labels), -1)[:, 0]
    pred = np.asarray(batch.predictions, dtype=float).reshape(len(batch.predictions), -1)[:, 0]
    present = ~np.isnan(y)
    y, pred = y[present], np.clip(pred[present], 0.0, None)
    if len(y) == 0:
        return {name: float("nan") for name in METRIC_DIRECTIONS}
    return {
        "rmse": float(root_mean_squared_error(y, pred)),
        "mae": float(mean_absolute_error(y, pred)),
        "mae_units": float(mean_absolute_error(np.expm1(y), np.expm1(pred))),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
    }


METRIC_DIRECTIONS: dict[str, str] = {"rmse": "min", "mae": "min", "mae_units": "min", "r2": "max"}


def decode_sales(predictions: np.ndarray) -> pd.DataFrame:
    """``prediction`` (log1p units, as the model outputs it) and ``units`` (expm1 of it, clipped at 0)."""
    value = np.asarray(predictions, dtype=float).reshape(len(predictions), -1)[:, 0]
    return pd.DataFrame({"prediction": value, "units": np.expm1(np.clip(value, 0.0, None))})


def sales_baselines(data: TaskData, split: str, *, classical: bool = True) -> dict[str, dict[str, float]]:
    """TASKS.md's baselines on ``split``: lag-1, the mean of lags 1-4 and, when
    ``classical``, a gradient-boosted regressor on the numeric inputs fitted on train."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    predictors: dict[str, Predictor] = {
        "lag_1": lambda f: f["lag_1"].to_numpy(dtype=float),
        "mean_lags_1_4": lambda f: f[list(LAG_COLUMNS)].to_numpy(dtype=float).mean(axis=1),
    }
    # One thread per native pool: OpenMP/BLAS threads spinning on busy cores (beside a
    # training job) made these fits 5-30x slower in our measurements; alone, it costs ~1 s.
    with threadpool_limits(1):
        if classical:
            predictors["gradient_boosting"] = _fit_gradient_boosting(data["train"])
        return {name: _evaluate(predict, data, split) for name, predict in predictors.items()}


def _fit_gradient_boosting(train: pd.DataFrame) -> Predictor:
    from sklearn.ensemble import HistGradientBoostingRegressor

    features = [*LAG_COLUMNS, "median_price"]  # NaN price is handled natively
    x, y = train[features].to_numpy(dtype=float), train["label"].to_numpy(dtype=float)
    model = HistGradientBoostingRegressor(random_state=0).fit(x, y)
    return lambda f: model.predict(f[features].to_numpy(dtype=float))


def _evaluate(predict: Predictor, data: TaskData, split: str) -> dict[str, float]:
    frame = data[split]
    batch = EvalBatch(
        split=split,
        frame=frame,
        predictions=np.asarray(predict(frame), dtype=float).reshape(-1, 1),
        labels=frame[list(SALES.labels)].to_numpy(dtype=float),
        score=lambda extra: np.asarray(predict(extra), dtype=float).reshape(-1, 1),
        extras=data.extras,
    )
    return sales_metrics(batch)


SALES = TaskSpec(
    name="sales",
    kind="regression",
    description="Weekly units per product (log1p), from its description, recent weeks and price",
    text="description",
    labels=("label",),
    build_dataset=build_sales,
    metrics=sales_metrics,
    metric_directions=METRIC_DIRECTIONS,
    primary_metric="rmse",
    numeric=(*LAG_COLUMNS, "median_price"),
    keys=("stock_code", "week"),
    settings=SalesSettings,
    decode=decode_sales,
    baselines=sales_baselines,
)


@hookimpl
def register_tasks(register: Register) -> None:
    """Register the ``sales`` task."""
    register(SALES)


__all__ = [
    "LAG_COLUMNS",
    "SALES",
    "SalesSettings",
    "build_sales",
    "decode_sales",
    "register_tasks",
    "sales_baselines",
    "sales_metrics",
    "week_start",
]
