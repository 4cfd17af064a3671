"""A CSV ``data.path`` is streamed by DuckDB (plugins/shared/csv_input.py), never read whole with pandas:
the cleaned table and the task tables are value for value those of the same data as Parquet (and of
the pandas reader it replaced), compressed CSVs read alike, and every bad value is named with its row."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
from shopmtl import BuildContext
from shopmtl.plugins.price_bin import PRICE_BIN, PriceBinSettings
from shopmtl.plugins.shared import retail

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
LINE = "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return pd.read_parquet(retail.DEFAULT_DATA_PATH)


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory: pytest.TempPathFactory, bundled: pd.DataFrame) -> dict[str, Path]:
    """The bundled file as CSV twice: dates as pandas writes them, and as the UCI's own CSV (12/1/2010 8:26)."""
    folder = tmp_path_factory.mktemp("csv")
    iso, uci = folder / "retail.csv", folder / "retail_uci.csv.gz"
    bundled.to_csv(iso, index=False)
    date = bundled["InvoiceDate"].dt
    words = date.month.astype(str) + "/" + date.day.astype(str) + "/" + date.year.astype(str) + " "
    bundled.assign(InvoiceDate=words + date.hour.astype(str) + ":" + date.strftime("%M")).to_csv(
        uci, index=False
    )
    return {"iso": iso, "uci": uci}


@pytest.fixture
def no_pandas_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the CSV goes through pandas (which would hold it whole in memory)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the CSV was read with pandas")

    monkeypatch.setattr(pd, "read_csv", refuse)
    monkeypatch.setattr(retail, "read_transactions", refuse)


@pytest.mark.parametrize("style", ["iso", "uci"])
def test_the_bundled_data_as_csv_cleans_to_the_same_table(
    style: str, csv_files: dict[str, Path], no_pandas_reader: None
) -> None:
    got = retail.load_transactions(csv_files[style])
    assert len(got) == 527_758
    pd.testing.assert_frame_equal(got, retail.load_transactions(), check_exact=True)


def test_the_csv_table_equals_the_pandas_reader_it_replaced(csv_files: dict[str, Path]) -> None:
    """The old path: pandas read_csv (codes as text, dates guessed from the first), cleaned in pandas."""
    old = retail.clean_transactions(retail.read_transactions(csv_files["uci"]))
    old["invoice_date"] = old["invoice_date"].astype(
        "datetime64[ns]"
    )  # the cleaned table's unit (pandas 3 reads us)
    pd.testing.assert_frame_equal(retail.load_transactions(csv_files["uci"]), old, check_exact=True)


def test_a_task_built_from_the_csv_equals_the_one_from_parquet(
    csv_files: dict[str, Path], no_pandas_reader: None
) -> None:
    from_csv = PRICE_BIN.build_dataset(
        BuildContext(settings=PriceBinSettings(), data_path=str(csv_files["iso"]))
    )
    reference = PRICE_BIN.build_dataset(BuildContext(settings=PriceBinSettings()))
    for split in ("train", "val", "test"):
        assert len(from_csv[split]) > 0
        pd.testing.assert_frame_equal(from_csv[split], reference[split], check_exact=True)
    assert from_csv.sources == (str(csv_files["iso"]),)


def _zip(path: Path, frame: pd.DataFrame) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("shop.csv", frame.to_csv(index=False))


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip"])
def test_compressed_csvs_read_as_the_plain_one(
    suffix: str,
    tmp_path: Path,
    bundled: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    no_pandas_reader: None,
) -> None:
    monkeypatch.setenv("SHOPMTL_CACHE_DIR", str(tmp_path / "cache"))
    head = bundled.head(3_000)
    plain, packed = tmp_path / "shop.csv", tmp_path / f"shop{suffix}"
    head.to_csv(plain, index=False)
    _zip(packed, head) if suffix == ".csv.zip" else head.to_csv(packed, index=False)
    expected = retail.load_transactions(plain)
    assert len(expected) > 2_000
    pd.testing.assert_frame_equal(retail.load_transactions(packed), expected, check_exact=True)
    # bz2, xz and zip go through a decompressed temporary copy, removed once the table is built
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_a_bad_archive_is_named_with_the_fix(tmp_path: Path) -> None:
    two = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", HEADER + LINE)
        archive.writestr("b.csv", HEADER + LINE)
    with pytest.raises(
        ValueError, match=r"two\.csv\.zip holds 2 files; a \.csv\.zip must hold exactly one CSV"
    ):
        retail.cleaned_table(two)
    broken = tmp_path / "broken.csv.bz2"
    broken.write_bytes(b"not bzip2 at all")
    with pytest.raises(ValueError, match=r"cannot decompress transactions file .*broken\.csv\.bz2"):
        retail.cleaned_table(broken)


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (
            "2,A,MUG,many,12/1/2010 9:00,1.5,1,UK\n",
            ("column Quantity holds 'many' on row 2", "line 4", "whole number"),
        ),
        (
            "2,A,MUG,10000000000000000000,12/1/2010 9:00,1.5,1,UK\n",
            ("column Quantity", "on row 2", "9.2e18"),
        ),
        (
            "2,A,MUG,1,2010-12-01 09:00,1.5,1,UK\n",
            (
                "column InvoiceDate holds '2010-12-01 09:00' on row 2",
                "format %m/%d/%Y %H:%M",
                "one format",
            ),
        ),
        (
            "2,A,MUG,1,12/1/2010 9:00,cheap,1,UK\n",
            ("column UnitPrice holds 'cheap' on row 2", "not a number"),
        ),
    ],
)
def test_a_value_that_does_not_convert_is_named_with_its_row(
    row: str, words: tuple[str, ...], tmp_path: Path
) -> None:
    path = tmp_path / "shop.csv"
    path.write_text(HEADER + LINE + LINE.replace("536365", "536366") + row)
    with pytest.raises(ValueError) as info:
        retail.cleaned_table(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message


def test_an_unrecognisable_first_date_and_a_missing_column_are_named(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    path.write_text(HEADER + LINE.replace("12/1/2010 8:26", "someday"))
    with pytest.raises(
        ValueError, match=r"shop\.csv: column InvoiceDate starts with 'someday'.*one format"
    ):
        retail.cleaned_table(path)
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(HEADER.replace("InvoiceNo", "Invoice") + LINE)
    with pytest.raises(
        ValueError, match=r"renamed\.csv: missing column\(s\) InvoiceNo.*data\.columns\.InvoiceNo="
    ):
        retail.cleaned_table(renamed)
    assert retail.cleaned_table(renamed, {"InvoiceNo": "Invoice"}).rows.is_file()


def test_a_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(
        (HEADER + LINE.replace("WHITE HANGING", "CAF\u00c9 HANGING")).encode("latin-1")
    )
    with pytest.raises(
        ValueError, match=r"latin\.csv: line 2 is not UTF-8 text\. Save the file as UTF-8"
    ):
        retail.cleaned_table(path)


def test_text_stays_text_and_empty_fields_are_missing(tmp_path: Path) -> None:
    """Codes are not numbers, "nan" is the source's word for a missing description, an empty field is missing."""
    path = tmp_path / "shop.csv"
    lines = [
        LINE.replace("85123A", "85048"),
        LINE.replace("WHITE HANGING HEART T-LIGHT HOLDER", "nan"),
        LINE.replace("17850.0", ""),
        LINE.replace("536365", "C536365"),
    ]
    path.write_text(HEADER + "".join(lines))
    clean = retail.load_transactions(path)
    assert clean["stock_code"].tolist() == ["85048", "85123A"]
    assert clean["customer_id"].iloc[0] == 17850.0 and pd.isna(clean["customer_id"].iloc[1])
    assert clean["invoice_date"].iloc[0] == pd.Timestamp("2010-12-01 08:26")


def test_a_column_no_task_reads_is_never_typed(tmp_path: Path) -> None:
    """A column outside the column map may hold numbers for 30,000 lines and then a word."""
    path = tmp_path / "shop.csv"
    lines = [LINE.rstrip("\n") + f",{k}\n" for k in range(30_000)] + [
        LINE.rstrip("\n") + ",see note\n"
    ]
    path.write_text(HEADER.rstrip("\n") + ",Note\n" + "".join(lines))
    assert len(retail.load_transactions(path)) == 30_001
