"""What the built-in tasks are checked against: TASKS.md's figures recomputed with plain pandas
from the raw file (independently of the plugins' code), and the four datasets built once.

A pytest plugin (pytest_plugins in tests/conftest.py): its fixtures are built once per
session and shared by every test module of tests/plugins/.
"""

from __future__ import annotations

import zlib

import pandas as pd
import pytest
from independent_retail import RAW_2011, independent_clean
from shopmtl import BuildContext, TaskData, TaskSpec
from shopmtl.plugins import price_bin, recommend, sales, user_profile

MAP_2010 = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
SPLITS = ("train", "val", "test")
CUTOFF = pd.Timestamp("2011-09-01")
SPECS = {
    spec.name: spec
    for spec in (sales.SALES, price_bin.PRICE_BIN, user_profile.USER_PROFILE, recommend.RECOMMEND)
}


# --- independent reference computations (plain pandas, no plugin code) ---------------------


def split_of(key: str) -> str:
    b = zlib.crc32(key.encode()) % 10
    return "test" if b == 0 else "val" if b == 1 else "train"


@pytest.fixture(scope="session")
def clean() -> pd.DataFrame:
    """TASKS.md's cleaning of the raw shared file, written out plainly."""
    if not RAW_2011.is_file():
        pytest.skip("../shared/data is not available")
    out = independent_clean(pd.read_parquet(RAW_2011))
    out["week"] = out["InvoiceDate"].dt.to_period("W-SUN").dt.start_time
    return out


@pytest.fixture(scope="session")
def names(clean: pd.DataFrame) -> dict[str, str]:
    """Product description: most frequent, ties alphabetical."""
    counts = clean.groupby(["StockCode", "Description"]).size().reset_index(name="n")
    counts = counts.sort_values(["StockCode", "n", "Description"], ascending=[True, False, True])
    return dict(counts.drop_duplicates("StockCode")[["StockCode", "Description"]].to_numpy())


@pytest.fixture(scope="session")
def people(clean: pd.DataFrame) -> pd.DataFrame:
    rows = clean[clean["CustomerID"].notna()].copy()
    rows["CustomerID"] = rows["CustomerID"].astype(int)
    return rows


@pytest.fixture(scope="session")
def eligible(people: pd.DataFrame) -> list[int]:
    before = set(people.loc[people["InvoiceDate"] < CUTOFF, "CustomerID"])
    after = set(people.loc[people["InvoiceDate"] >= CUTOFF, "CustomerID"])
    return sorted(before & after)


@pytest.fixture(scope="session")
def pool(people: pd.DataFrame) -> pd.Series:
    """Distinct buyers before the cutoff per product, by StockCode."""
    return (
        people[people["InvoiceDate"] < CUTOFF]
        .groupby("StockCode")["CustomerID"]
        .nunique()
        .sort_index()
    )


@pytest.fixture(scope="session")
def positives(people: pd.DataFrame, eligible: list[int], pool: pd.Series) -> dict[int, list[str]]:
    after = people[
        (people["InvoiceDate"] >= CUTOFF)
        & people["CustomerID"].isin(eligible)
        & people["StockCode"].isin(pool.index)
    ]
    out = {c: sorted(set(g)) for c, g in after.groupby("CustomerID")["StockCode"]}
    return {c: out.get(c, []) for c in eligible}


# --- the datasets, built once ---------------------------------------------------------------


def build(spec: TaskSpec, **ctx) -> TaskData:
    return spec.build_dataset(BuildContext(settings=spec.settings(), **ctx))


@pytest.fixture(scope="session")
def datasets() -> dict[str, TaskData]:
    return {name: build(spec) for name, spec in SPECS.items()}


@pytest.fixture(scope="session")
def test_baselines(datasets: dict[str, TaskData]) -> dict[str, dict]:
    return {name: SPECS[name].baselines(datasets[name], "test") for name in SPECS}
