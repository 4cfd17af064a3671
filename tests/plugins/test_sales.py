"""The sales task's dataset against TASKS.md and an independent recomputation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from builtin_reference import SPLITS
from shopmtl import EvalBatch, TaskData
from shopmtl.plugins import sales

# --- sales ----------------------------------------------------------------------------------


def test_sales_reference_counts(datasets: dict[str, TaskData]) -> None:
    data = datasets["sales"]
    assert [len(data[s]) for s in SPLITS] == [101_780, 28_680, 30_075]
    assert (data["test"]["label"] == 0).mean() == pytest.approx(0.398, abs=0.0005)
    assert data["train"]["week"].max() == pd.Timestamp("2011-08-08")
    assert (data["val"]["week"].min(), data["val"]["week"].max()) == (
        pd.Timestamp("2011-08-15"),
        pd.Timestamp("2011-10-03"),
    )
    assert (data["test"]["week"].min(), data["test"]["week"].max()) == (
        pd.Timestamp("2011-10-10"),
        pd.Timestamp("2011-11-28"),
    )
    assert data["train"]["week"].min() == pd.Timestamp("2011-01-03")


def test_sales_counts_match_an_independent_recount(
    datasets: dict[str, TaskData], clean: pd.DataFrame
) -> None:
    first = clean.groupby("StockCode")["week"].min().clip(lower=pd.Timestamp("2011-01-03"))
    ranges = {
        "train": ("2011-01-03", "2011-08-08"),
        "val": ("2011-08-15", "2011-10-03"),
        "test": ("2011-10-10", "2011-11-28"),
    }
    for split, (lo, hi) in ranges.items():
        start = first.clip(lower=pd.Timestamp(lo))
        weeks = ((pd.Timestamp(hi) - start).dt.days // 7 + 1).clip(lower=0)
        assert weeks.sum() == len(datasets["sales"][split]), split


def test_sales_rows_match_weekly_sums(
    datasets: dict[str, TaskData], clean: pd.DataFrame, names: dict[str, str]
) -> None:
    frame = pd.concat([datasets["sales"][s] for s in SPLITS])
    # A best seller, a product first sold mid-year, and one sold only in December 2010.
    first = clean.groupby("StockCode")["week"].min()
    last = clean.groupby("StockCode")["week"].max()
    mid_year = first[first == pd.Timestamp("2011-06-06")].index[0]
    december_only = last[last < pd.Timestamp("2011-01-03")].index[0]
    for code in ("85123A", mid_year, december_only):
        rows = clean[clean["StockCode"] == code]
        weekly = rows.groupby("week")["Quantity"].sum()
        price = rows[(rows["week"] >= "2011-01-03") & (rows["week"] <= "2011-08-08")][
            "UnitPrice"
        ].median()
        mine = frame[frame["stock_code"] == code].sort_values("week")
        start = max(first[code], pd.Timestamp("2011-01-03"))
        assert mine["week"].tolist() == list(pd.date_range(start, "2011-11-28", freq="7D"))
        for _, row in mine.iterrows():
            assert row["label"] == pytest.approx(math.log1p(weekly.get(row["week"], 0)))
            for k in range(1, 5):
                assert row[f"lag_{k}"] == pytest.approx(
                    math.log1p(weekly.get(row["week"] - pd.Timedelta(weeks=k), 0))
                )
            assert row["description"] == names[code]
            assert (math.isnan(price) and math.isnan(row["median_price"])) or row[
                "median_price"
            ] == pytest.approx(price)
    assert (frame.loc[frame["stock_code"] == december_only, "label"] == 0).all()
    assert frame["median_price"].isna().any()  # products with no train-week sale: missing, not 0


def test_sales_baselines_reproduce_the_reference(test_baselines: dict[str, dict]) -> None:
    got = test_baselines["sales"]
    assert got["lag_1"]["rmse"] == pytest.approx(1.138, abs=0.005)
    assert got["lag_1"]["r2"] == pytest.approx(0.653, abs=0.005)
    assert got["mean_lags_1_4"]["rmse"] == pytest.approx(0.981, abs=0.005)
    assert got["mean_lags_1_4"]["r2"] == pytest.approx(0.742, abs=0.005)
    assert 0.986 - 0.005 <= got["gradient_boosting"]["rmse"] <= 1.027 + 0.005
    assert 0.717 - 0.005 <= got["gradient_boosting"]["r2"] <= 0.740 + 0.005


def test_sales_metrics_clip_and_skip_missing() -> None:
    frame = pd.DataFrame({"label": [0.0, 1.0, np.nan]})
    batch = EvalBatch(
        "val", frame, np.array([[-3.0], [1.0], [5.0]]), frame[["label"]].to_numpy(), lambda f: None
    )
    got = sales.sales_metrics(batch)
    assert got == {"rmse": 0.0, "mae": 0.0, "mae_units": 0.0, "r2": 1.0}
    assert set(got) == set(sales.SALES.metric_directions)
    decoded = sales.decode_sales(np.array([[-1.0], [math.log1p(9)]]))
    assert decoded["units"].tolist() == pytest.approx([0.0, 9.0])
    assert decoded["prediction"].tolist() == pytest.approx([-1.0, math.log1p(9)])
