"""The transactions loader (shopmtl.plugins.shared.retail) against the data README's known facts,
an independent plain-pandas recount of TASKS.md's cleaning, and its error messages."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import pandas as pd
import pytest
from independent_retail import RAW_2010, RAW_2011, independent_clean
from shopmtl.plugins.shared import retail

MAP_2010 = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
SHA_2011 = "518b36c8452f511e938535aebce2c3ea051432fe999bd85e81720ebb07af5931"

needs_shared = pytest.mark.skipif(not RAW_2011.is_file(), reason="../shared/data is not available")


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """The bundled file through the loader's reader (no rows dropped)."""
    return retail.read_transactions()


@pytest.fixture(scope="module")
def independent_raw() -> pd.DataFrame:
    """The shared copy read with plain pandas, for independent recounts."""
    if not RAW_2011.is_file():
        pytest.skip("../shared/data is not available")
    return pd.read_parquet(RAW_2011)


def test_bundled_file_is_the_published_one() -> None:
    digest = hashlib.sha256(retail.DEFAULT_DATA_PATH.read_bytes()).hexdigest()
    assert digest == SHA_2011


def test_bundled_data_carries_its_attribution() -> None:
    notice = (retail.DEFAULT_DATA_PATH.parent / "NOTICE.md").read_text()
    for needed in ("Online Retail", "Chen", "UCI", "10.24432/C5BW33", "CC BY 4.0"):
        assert needed in notice


def test_first_row(raw: pd.DataFrame) -> None:
    first = raw.iloc[0]
    assert list(raw.columns) == list(retail.CANONICAL_COLUMNS)
    assert first["InvoiceNo"] == "536365"
    assert first["StockCode"] == "85123A"
    assert first["Description"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert first["Quantity"] == 6
    assert first["InvoiceDate"] == pd.Timestamp("2010-12-01 08:26")
    assert first["UnitPrice"] == pytest.approx(2.55)
    assert first["CustomerID"] == 17850
    assert first["Country"] == "United Kingdom"


def test_readme_facts(raw: pd.DataFrame) -> None:
    assert len(raw) == 541_909
    assert raw["InvoiceNo"].nunique() == 25_900
    assert raw["InvoiceNo"].str.startswith("C").sum() == 9_288
    assert raw["StockCode"].nunique() == 4_070
    assert raw["CustomerID"].nunique() == 4_372
    assert raw["CustomerID"].isna().sum() == 135_080
    assert raw["Country"].nunique() == 38
    assert (raw["Description"] == "nan").sum() == 1_454
    assert raw["InvoiceDate"].min() == pd.Timestamp("2010-12-01 08:26")
    assert raw["InvoiceDate"].max() == pd.Timestamp("2011-12-09 12:50")


def test_usual_cleaning_count(raw: pd.DataFrame) -> None:
    usual = (
        (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
        & ~raw["InvoiceNo"].str.startswith("C")
        & raw["CustomerID"].notna()
    )
    assert usual.sum() == 397_884


def test_cleaning_matches_an_independent_recount(independent_raw: pd.DataFrame) -> None:
    clean = retail.load_transactions()
    expected = independent_clean(independent_raw)
    assert len(clean) == len(expected)
    assert clean["customer_id"].notna().sum() == expected["CustomerID"].notna().sum()
    assert clean["stock_code"].nunique() == expected["StockCode"].nunique() == 3_798
    assert clean["quantity"].sum() == expected["Quantity"].sum()
    assert (clean["quantity"] > 0).all() and (clean["unit_price"] > 0).all()
    assert not clean["invoice"].str.startswith("C").any()
    assert not clean["description"].isin(["nan", ""]).any()
    # The customer-level tasks' rows: cleaned and with a customer, a subset of the usual cleaning.
    assert retail.customer_rows(clean)["customer_id"].dtype == "int64"
    assert len(retail.customer_rows(clean)) <= 397_884


def test_product_descriptions_match_an_independent_recount(independent_raw: pd.DataFrame) -> None:
    expected = {}
    clean = independent_clean(independent_raw)
    for code, descriptions in clean.groupby("StockCode")["Description"]:
        counts = descriptions.value_counts()
        expected[code] = min(d for d, n in counts.items() if n == counts.max())
    names = retail.product_descriptions(retail.load_transactions())
    assert names.to_dict() == expected
    table = retail.load_transactions()
    assert (table["product_description"] == names.reindex(table["stock_code"]).to_numpy()).all()


def test_cleaning_rules_on_a_small_table() -> None:
    rows = [
        # invoice, code, description, qty, price, customer
        (
            "1",
            " 85123a ",
            "  HEART  ",
            1,
            1.0,
            1.0,
        ),  # kept: code and text stripped, code upper-cased
        ("2", "85123A", "HEART", 1, 1.0, None),  # kept: no customer is fine here
        ("C3", "85123A", "HEART", 1, 1.0, 1.0),  # cancelled
        ("4", "85123A", "nan", 1, 1.0, 1.0),  # description stored as "nan"
        ("5", "85123A", "HEART", 0, 1.0, 1.0),  # no quantity
        ("6", "85123A", "HEART", 1, 0.0, 1.0),  # no price
        ("7", "m", "Manual", 1, 1.0, 1.0),  # fee codes, any case
        ("8", "BANK CHARGES", "Bank", 1, 1.0, 1.0),
        ("9", "gift_0001_20", "voucher", 1, 1.0, 1.0),  # prefixes
        ("10", "ADJUST2", "adjust", 1, 1.0, 1.0),
        ("11", "TEST001", "test", 1, 1.0, 1.0),
        ("12", "DCGSSBOY", "BOY", 1, 1.0, 1.0),  # a product despite its letters
    ]
    raw = pd.DataFrame(
        {
            "InvoiceNo": [r[0] for r in rows],
            "StockCode": [r[1] for r in rows],
            "Description": [r[2] for r in rows],
            "Quantity": [r[3] for r in rows],
            "InvoiceDate": pd.Timestamp("2011-01-03"),
            "UnitPrice": [r[4] for r in rows],
            "CustomerID": [r[5] for r in rows],
            "Country": "UK",
        }
    )
    clean = retail.clean_transactions(raw)
    assert clean["invoice"].tolist() == ["1", "2", "12"]
    assert clean["stock_code"].tolist() == ["85123A", "85123A", "DCGSSBOY"]
    assert clean["description"].tolist() == ["HEART", "HEART", "BOY"]
    assert clean["customer_id"].isna().tolist() == [False, True, False]


def test_product_description_is_the_most_frequent_with_alphabetical_ties() -> None:
    clean = pd.DataFrame(
        {
            "stock_code": ["A", "A", "A", "B", "B", "C"],
            "description": ["ZEBRA", "ZEBRA", "APPLE", "PEAR", "KIWI", "ONLY"],
        }
    )
    assert retail.product_descriptions(clean).to_dict() == {"A": "ZEBRA", "B": "KIWI", "C": "ONLY"}


def test_buckets_and_splits() -> None:
    assert retail.bucket("85123A") == zlib.crc32(b"85123A") % 10
    for key in ("85123A", "17850", "22423", "12347"):
        b = zlib.crc32(key.encode()) % 10
        assert retail.split_of(key) == ("test" if b == 0 else "val" if b == 1 else "train")
    assert retail.customer_key(17850.0) == "17850"
    ids = pd.Series([17850.0, 12347.0, 17850.0])
    assert retail.split_customers(ids).tolist() == [
        retail.split_of("17850"),
        retail.split_of("12347"),
        retail.split_of("17850"),
    ]
    codes = pd.Series(["85123A", "22423"], index=[5, 9])
    split = retail.split_products(codes)
    assert split.index.tolist() == [5, 9]
    assert split.tolist() == [retail.split_of("85123A"), retail.split_of("22423")]


def test_load_is_cached_per_file_and_mapping() -> None:
    assert retail.load_transactions() is retail.load_transactions(None, {})
    assert retail.load_transactions(retail.DEFAULT_DATA_PATH) is retail.load_transactions()


@needs_shared
def test_column_map_reads_the_2009_2010_file() -> None:
    raw = retail.read_transactions(RAW_2010, MAP_2010)
    assert list(raw.columns) == list(retail.CANONICAL_COLUMNS)
    assert len(raw) == 525_461
    assert raw["InvoiceDate"].min() == pd.Timestamp("2009-12-01 07:45")
    assert raw.iloc[0]["InvoiceNo"] == "489434" and raw.iloc[0]["CustomerID"] == 13085
    clean = retail.load_transactions(RAW_2010, MAP_2010)
    assert len(clean) == len(independent_clean(raw))


def test_csv_with_a_column_map(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    pd.DataFrame(
        {
            "Invoice": ["100", "C101", "102"],
            "StockCode": ["85048", "85048", "22423"],
            "Description": ["LIGHTS ", "LIGHTS", "nan"],
            "Quantity": [12, -1, 3],
            "InvoiceDate": ["2009-12-01 07:45", "2009-12-02 08:00", "2009-12-03 09:00"],
            "Price": [6.95, 6.95, 1.0],
            "Customer ID": [13085, None, 1],
            "Country": ["United Kingdom"] * 3,
        }
    ).to_csv(path, index=False)
    raw = retail.read_transactions(path, MAP_2010)
    assert raw["StockCode"].tolist() == ["85048", "85048", "22423"]  # text, not 85048.0
    assert raw["InvoiceDate"].iloc[0] == pd.Timestamp("2009-12-01 07:45")
    clean = retail.load_transactions(path, MAP_2010)
    assert clean["invoice"].tolist() == ["100"]
    assert clean["description"].tolist() == ["LIGHTS"]


def test_missing_column_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "retail_2010.parquet"
    pd.read_parquet(RAW_2010 if RAW_2010.is_file() else retail.DEFAULT_DATA_PATH).head(5).rename(
        columns={"InvoiceNo": "Invoice"}
    ).to_parquet(path)
    with pytest.raises(ValueError) as info:
        retail.load_transactions(path)  # no column map: "InvoiceNo" is not there
    message = str(info.value)
    assert "retail_2010.parquet" in message
    assert "InvoiceNo" in message
    assert "data.columns.InvoiceNo=" in message


def test_unknown_canonical_name_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match="Did you mean 'InvoiceNo'"):
        retail.read_transactions(None, {"InvoiceNr": "Invoice"})


def test_missing_and_unsupported_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        retail.load_transactions(tmp_path / "nowhere.parquet")
    sheet = tmp_path / "shop.xlsx"
    sheet.write_bytes(b"not really")
    with pytest.raises(ValueError, match=r"shop\.xlsx.*\.csv"):
        retail.read_transactions(sheet)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not a parquet file")
    with pytest.raises(ValueError, match="broken.parquet"):
        retail.read_transactions(broken)
