"""``sales``: regression of a product's weekly units (TASKS.md, task 1).

One row per (product, week) from the product's first week with a sale (at the earliest
``first_week``) to the last test week, zero weeks included. Target ``log1p(units)``;
inputs the product description, its log units in the 4 previous weeks and its median
price over the train price weeks. Split by time.

The loss is a setting (``tasks.sales.settings.loss``), see :data:`LOSSES`: ``mse`` on the
log1p target (the default), or a count model of the units themselves -- ``poisson``,
``tweedie`` (log link) or ``zero_inflated_lognormal`` (ZILN, Wang et al. 2019; about 40%
of the weeks sell nothing). Whatever the loss, the task predicts ``log1p(expected units)``,
so metrics, baselines and ``decode`` read the same scale.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from shopmtl import (
    BuildContext,
    EvalBatch,
    Prior,
    PriorState,
    Register,
    TaskData,
    TaskSpec,
    hookimpl,
    log1p_regression_metrics,
)
from shopmtl.plugins.sales_losses import (
    LOSSES,
    poisson_loss,
    predict_from_log_mean,
    predict_zero_inflated_lognormal,
    tweedie_loss,
    zero_inflated_lognormal_loss,
)
from shopmtl.plugins.shared import retail
from shopmtl.plugins.shared.baselines import Predictor, baseline_metrics

#: A baseline: rows -> predictions (the task's activated outputs).

#: Lag features ``lag_1`` ... ``lag_4``: log1p units 1-4 weeks before the row's week.
N_LAGS = 4
LAG_COLUMNS: tuple[str, ...] = tuple(f"lag_{k}" for k in range(1, N_LAGS + 1))

WeekRange = tuple[pd.Timestamp, pd.Timestamp]

#: The losses ``tasks.sales.settings.loss`` chooses from.
SalesLoss = Literal["mse", "poisson", "tweedie", "zero_inflated_lognormal"]


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
    #: The training loss: ``mse`` on the log1p target; ``poisson`` or ``tweedie`` (log
    #: link) on the units; ``zero_inflated_lognormal`` (ZILN) on the units. Predictions
    #: are ``log1p(expected units)`` with every loss.
    loss: SalesLoss = "mse"
    #: Variance power p of the ``tweedie`` loss (1 < p < 2: compound Poisson-gamma).
    tweedie_power: float = 1.5

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(
                f"sales settings: loss={self.loss!r} is not one of {', '.join(LOSSES)}"
            )
        if not 1.0 < self.tweedie_power < 2.0:
            raise ValueError(
                f"sales settings: tweedie_power={self.tweedie_power} must lie strictly between 1 and 2"
            )
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
                raise ValueError(
                    f"sales settings: {name}={value} is a {week.day_name()}; name each week by its Monday"
                )
        first, (val_start, val_end), (test_start, test_end), (price_start, price_end) = self.weeks()
        if not first <= val_start <= val_end < test_start <= test_end:
            raise ValueError(
                "sales settings: need first_week <= val_weeks[0] <= val_weeks[1] < test_weeks[0] <= test_weeks[1]"
            )
        if not price_start <= price_end < val_start:
            raise ValueError(
                "sales settings: price_weeks must be an ordered range of train weeks (before val_weeks)"
            )

    def weeks(self) -> tuple[pd.Timestamp, WeekRange, WeekRange, WeekRange]:
        """``(first_week, val_weeks, test_weeks, price_weeks)`` as timestamps."""

        def pair(weeks: tuple[str, str]) -> WeekRange:
            return pd.Timestamp(weeks[0]), pd.Timestamp(weeks[1])

        return (
            pd.Timestamp(self.first_week),
            pair(self.val_weeks),
            pair(self.test_weeks),
            pair(self.price_weeks),
        )


def week_start(dates: pd.Series) -> pd.Series:
    """Monday 00:00 of each date's week: ``dates.dt.to_period("W-SUN").start_time``, vectorised."""
    days = dates.dt.normalize()
    return days - pd.to_timedelta(days.dt.day_of_week, unit="D")


def build_sales(ctx: BuildContext) -> TaskData:
    """The ``sales`` rows of the context's file, split by week (aggregates from DuckDB: :func:`_weekly_units`)."""
    settings: SalesSettings = ctx.settings or SalesSettings()
    first, (val_start, val_end), (test_start, last), (price_start, price_end) = settings.weeks()
    weeks = pd.date_range(first - pd.Timedelta(weeks=N_LAGS), last, freq="7D")
    products, weekly = _weekly_units(ctx, weeks[0], last, price_start, price_end)
    first_sale = pd.Series(
        products["first_sale"].to_numpy(), index=pd.Index(products["stock_code"].to_numpy())
    )

    # Dense (product x week) matrix of units, from N_LAGS weeks before `first` to `last`;
    # weeks with no sale (and weeks before the first sale) hold 0, as the lags require.
    units = np.zeros((len(products), len(weeks)))
    product_row = first_sale.index.get_indexer(weekly["stock_code"].to_numpy())
    week_column = weeks.get_indexer(pd.DatetimeIndex(weekly["week"]))
    units[product_row, week_column] = weekly["units"].to_numpy(dtype=float)
    log_units = np.log1p(units)

    # Row (product p, week j) exists from max(first sale, first) onwards.
    row_weeks = weeks[N_LAGS:]
    start = np.maximum(first_sale.to_numpy(), np.datetime64(first))
    p_idx, w_idx = np.nonzero(row_weeks.to_numpy()[None, :] >= start[:, None])
    j = w_idx + N_LAGS  # column in `weeks`

    frame = pd.DataFrame(
        {
            "stock_code": products["stock_code"].to_numpy()[p_idx],
            "week": row_weeks.to_numpy()[w_idx],
            "description": products["description"].to_numpy()[p_idx],
            **{col: log_units[p_idx, j - k] for k, col in enumerate(LAG_COLUMNS, start=1)},
            "median_price": products["median_price"].to_numpy(dtype=float)[p_idx],
            "label": log_units[p_idx, j],
        }
    )
    week = frame["week"]
    split = np.select(
        [week.between(test_start, last), week.between(val_start, val_end), week < val_start],
        ["test", "val", "train"],
        default="",  # weeks between val and test when they are not adjacent: no split
    )
    return TaskData(
        splits={s: frame[split == s].reset_index(drop=True) for s in ("train", "val", "test")},
        sources=retail.transactions_files(ctx.data_path),
    )


def _weekly_units(
    ctx: BuildContext,
    first: pd.Timestamp,
    last: pd.Timestamp,
    price_start: pd.Timestamp,
    price_end: pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per product (first sale on or before ``last``, by StockCode): first sale week, description, median
    UnitPrice over weeks ``price_start`` ... ``price_end`` (NaN if none); units per (product, week) in range."""
    con = retail.open_transactions(ctx.data_path, ctx.column_map)
    try:
        # Monday 00:00 of each line's week, as week_start computes it.
        con.execute(
            "CREATE TEMP VIEW lines AS SELECT stock_code, product_description, quantity, unit_price, "
            "date_trunc('week', invoice_date)::TIMESTAMP AS week FROM clean"
        )
        con.execute(
            "CREATE TEMP TABLE products AS SELECT stock_code, min(week) AS first_sale, any_value("
            "product_description) AS description FROM lines GROUP BY 1 HAVING min(week) <= ?",
            [last],
        )
        products = con.execute(
            f"""
            SELECT p.stock_code, p.first_sale, p.description, m.median_price FROM products p LEFT JOIN (
                SELECT stock_code, {retail.median_sql("unit_price")} AS median_price FROM lines
                WHERE week BETWEEN ? AND ? GROUP BY stock_code) m USING (stock_code) ORDER BY p.stock_code
        """,
            [price_start, price_end],
        ).df()
        weekly = con.execute(
            "SELECT stock_code, week, sum(quantity) AS units FROM lines SEMI JOIN products "
            "USING (stock_code) WHERE week BETWEEN ? AND ? GROUP BY stock_code, week",
            [first, last],
        ).df()
    finally:
        con.close()
    products["first_sale"] = products["first_sale"].astype("datetime64[ns]")
    weekly["week"] = weekly["week"].astype("datetime64[ns]")
    return products, weekly


def sales_metrics(batch: EvalBatch) -> dict[str, float]:
    """RMSE, MAE (log1p scale), MAE in units and R²; predictions clipped at 0 first."""
    return log1p_regression_metrics(batch.labels, batch.predictions, unit="units")


METRIC_DIRECTIONS: dict[str, str] = {"rmse": "min", "mae": "min", "mae_units": "min", "r2": "max"}


def decode_sales(predictions: np.ndarray) -> pd.DataFrame:
    """``prediction`` (log1p units, as the model outputs it) and ``units`` (expm1 of it, clipped at 0)."""
    # p[:, 0], not p.reshape(len(p), -1): numpy cannot infer a width of zero rows, and
    # decode must take zero rows (serve lists a task's outputs by decoding none).
    value = np.asarray(predictions, dtype=float)
    value = value[:, 0] if value.ndim > 1 else value
    return pd.DataFrame({"prediction": value, "units": np.expm1(np.clip(value, 0.0, None))})


def sales_baselines(
    data: TaskData, split: str, *, classical: bool = True
) -> dict[str, dict[str, float]]:
    """TASKS.md's baselines on ``split``: lag-1, the mean of lags 1-4 and, when
    ``classical``, a gradient-boosted regressor on the numeric inputs fitted on train."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    predictors: dict[str, Predictor] = {
        "lag_1": lambda f: f["lag_1"].to_numpy(dtype=float),
        "mean_lags_1_4": mean_of_lags,
    }
    # One thread per native pool: OpenMP/BLAS threads spinning on busy cores (beside a
    # training job) made these fits 5-30x slower in our measurements; alone, it costs ~1 s.
    with threadpool_limits(1):
        if classical:
            model = fit_gradient_boosting(data["train"])
            predictors["gradient_boosting"] = lambda f: predict_boosted(model, f)
        return baseline_metrics(predictors, data, split, list(SALES.labels), sales_metrics)


#: The gradient-boosted peer's inputs (a missing price is handled natively).
BOOSTED_FEATURES: tuple[str, ...] = (*LAG_COLUMNS, "median_price")


def fit_gradient_boosting(train: pd.DataFrame, val: pd.DataFrame | None = None) -> Any:
    """The gradient-boosted peer fitted on ``train`` (``val`` unused; ``random_state=0``)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    x, y = _boosted_inputs(train), train["label"].to_numpy(dtype=float)
    return HistGradientBoostingRegressor(random_state=0).fit(x, y)


def fit_gradient_boosting_prior(train: pd.DataFrame, val: pd.DataFrame | None = None) -> Any:
    """The peer as the prior: fitted by scikit-learn, its trees kept as node arrays."""
    from shopmtl.plugins.shared.portable.trees import BoostedTrees

    return BoostedTrees.of(fit_gradient_boosting(train, val))


def boosted_state(model: Any) -> PriorState:
    """The prior's trees as node arrays (``Prior.state``)."""
    from shopmtl.plugins.shared.portable.trees import BoostedTrees

    return BoostedTrees.of(model).state()


def boosted_from_state(state: PriorState) -> Any:
    """The trees :func:`boosted_state` described (``Prior.from_state``)."""
    from shopmtl.plugins.shared.portable.trees import BoostedTrees

    return BoostedTrees.from_state(state)


def predict_boosted(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The fitted gradient-boosted peer's log1p units for ``frame``'s rows."""
    return model.predict(_boosted_inputs(frame))


def _boosted_inputs(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(BOOSTED_FEATURES)].to_numpy(dtype=float)


def mean_of_lags(frame: pd.DataFrame) -> np.ndarray:
    """TASKS.md's mean of lags 1-4 (a missing lag counts as no sales)."""
    return np.nan_to_num(frame[list(LAG_COLUMNS)].to_numpy(dtype=float).mean(axis=1))


#: The classical models a run may start sales' head from (``tasks.sales.prior``): the head
#: then learns a residual over the prior's log1p units.
PRIORS = {
    "mean_of_lags": Prior(
        description="the mean of lags 1-4 (nothing to fit): the best classical peer",
        fit=lambda train, val: None,
        predict=lambda fitted, frame: mean_of_lags(frame),
    ),
    "gradient_boosting": Prior(
        description="gradient boosting on lags 1-4 and the median price",
        fit=fit_gradient_boosting_prior,
        predict=predict_boosted,
        state=boosted_state,
        from_state=boosted_from_state,
    ),
}


def configure_sales(settings: SalesSettings | None) -> TaskSpec:
    """The ``sales`` task with the loss its settings choose (``TaskSpec.configure``)."""
    settings = settings or SalesSettings()
    choice = LOSSES[settings.loss]
    if choice is None:
        return SALES
    loss = choice.loss
    if loss is tweedie_loss:
        loss = functools.partial(tweedie_loss, power=settings.tweedie_power)
    # The priors are in log1p units, the MSE head's space: no other loss's outputs read them.
    return dataclasses.replace(
        SALES, loss=loss, outputs=choice.outputs, predict=choice.predict, priors={}
    )


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
    configure=configure_sales,
    priors=PRIORS,
)


@hookimpl
def register_tasks(register: Register) -> None:
    """Register the ``sales`` task."""
    register(SALES)


__all__ = [
    "LAG_COLUMNS",
    "LOSSES",
    "SALES",
    "SalesSettings",
    "build_sales",
    "configure_sales",
    "decode_sales",
    "poisson_loss",
    "predict_from_log_mean",
    "predict_zero_inflated_lognormal",
    "register_tasks",
    "sales_baselines",
    "sales_metrics",
    "tweedie_loss",
    "week_start",
    "zero_inflated_lognormal_loss",
]
