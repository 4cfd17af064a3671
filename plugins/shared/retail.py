"""Load, clean and split a transactions table in the UCI "Online Retail" layout.

One job: turn a CSV or Parquet file of invoice lines into the cleaned table every
built-in task reads, exactly as ``TASKS.md`` ("Cleaning", "Stable splits") defines it.

Canonical column names are those of the 2010-2011 file; a file that names them
differently (the 2009-2010 file says ``Invoice``, ``Price``, ``Customer ID``) is read
through a column map, canonical name -> the file's name (``BuildContext.column_map``).

The cleaned table (:func:`load_transactions`) has one row per kept invoice line:

============================  ===================================================
``invoice``                   invoice number (str)
``stock_code``                cleaned StockCode: stripped, upper-cased (the product key)
``description``               the line's own Description, stripped
``product_description``       the product's description: its most frequent cleaned
                              Description over all cleaned rows, ties alphabetical
``quantity``                  units (int, > 0)
``invoice_date``              timestamp
``unit_price``                GBP (float, > 0)
``customer_id``               float, ``NaN`` when the line has no customer
``country``                   str
============================  ===================================================
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from shopmtl.plugins.shared import warehouse

# The splits are public as `shopmtl.retail.split_of` and friends.
from shopmtl.plugins.shared.retail_splits import (  # noqa: F401 -- re-exported
    bucket,
    customer_key,
    split_customers,
    split_of,
    split_products,
)
from shopmtl.plugins.shared.sources import check_columns, resolve_sources

if TYPE_CHECKING:
    import duckdb

#: Column names of the 2010-2011 file; a column map translates a file's own names to these.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)

#: StockCodes that are postage, fees, adjustments or manual lines, not products.
NON_PRODUCT_CODES: frozenset[str] = frozenset(
    {"POST", "DOT", "M", "C2", "D", "S", "B", "CRUK", "PADS", "AMAZONFEE", "BANK CHARGES"}
)
NON_PRODUCT_PREFIXES: tuple[str, ...] = ("ADJUST", "TEST", "GIFT_")

#: The bundled copy of "Online Retail" (D. Chen, UCI, CC BY 4.0; see data/NOTICE.md).
DEFAULT_DATA_PATH: Path = (
    Path(__file__).resolve().parent.parent / "data" / "online_retail_2010_2011.parquet"
)

_TEXT_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Country")


def read_transactions(
    path: str | Path | None = None, column_map: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Read a transactions file as-is (no row dropped), under the canonical column names.

    Args:
        path: a ``.csv`` (optionally compressed) or ``.parquet`` file, or a folder or glob
            of Parquet files; ``None`` reads the bundled 2010-2011 file.
        column_map: canonical name -> the file's name, for columns the file names differently.

    Returns:
        A frame with exactly :data:`CANONICAL_COLUMNS`: text columns as ``str`` (missing
        Description/Country as ``NaN``), ``Quantity`` int, ``InvoiceDate`` datetime,
        ``UnitPrice`` and ``CustomerID`` float (``NaN`` when missing).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unsupported suffix, unreadable file, a column missing, or a column
            map naming an unknown canonical column. Each message names the file and the fix.
    """
    path = path if path is not None else DEFAULT_DATA_PATH
    column_map = dict(column_map or {})
    _check_column_map(column_map)
    names = {canonical: column_map.get(canonical, canonical) for canonical in CANONICAL_COLUMNS}
    frames = _read_files(path, names)
    frame = (
        pd.concat([f[list(names.values())] for f in frames], ignore_index=True)
        if len(frames) > 1
        else frames[0]
    )
    frame = frame[list(names.values())]
    frame.columns = list(names)
    return _canonical_dtypes(frame, path)


def clean_transactions(raw: pd.DataFrame) -> pd.DataFrame:
    """Apply TASKS.md's cleaning to a canonical raw table (see the module docstring).

    Rows without a customer are kept (the product-level tasks use them); the
    customer-level tasks drop them with :func:`customer_rows`.
    """
    description = raw["Description"].str.strip()
    stock_code = raw["StockCode"].str.strip().str.upper()
    is_product = ~stock_code.isin(NON_PRODUCT_CODES) & ~stock_code.str.startswith(
        NON_PRODUCT_PREFIXES
    )
    keep = (
        (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
        & ~raw["InvoiceNo"].str.strip().str.startswith("C")
        # The source stores missing descriptions as the string "nan".
        & description.notna()
        & (description != "nan")
        & (description != "")
        & is_product
    ).fillna(False)
    clean = pd.DataFrame(
        {
            "invoice": raw["InvoiceNo"].str.strip(),
            "stock_code": stock_code,
            "description": description,
            "quantity": raw["Quantity"],
            "invoice_date": raw["InvoiceDate"],
            "unit_price": raw["UnitPrice"],
            "customer_id": raw["CustomerID"],
            "country": raw["Country"],
        }
    )[keep.to_numpy(dtype=bool)].reset_index(drop=True)
    names = product_descriptions(clean)
    clean.insert(3, "product_description", names.reindex(clean["stock_code"]).to_numpy())
    return clean


def product_descriptions(clean: pd.DataFrame) -> pd.Series:
    """Each product's description: its most frequent cleaned Description, ties alphabetical.

    Counted over every cleaned row (with or without a customer, all dates).

    Returns:
        A ``str`` Series indexed by ``stock_code``, sorted by it.
    """
    counts = (
        clean.groupby(["stock_code", "description"], sort=False).size().rename("n").reset_index()
    )
    counts = counts.sort_values(
        ["stock_code", "n", "description"], ascending=[True, False, True], kind="stable"
    )
    first = counts.drop_duplicates("stock_code")
    index = pd.Index(first["stock_code"], name="stock_code")
    return pd.Series(first["description"].to_numpy(), index=index, name="description")


def transactions_path(path: str | Path | None = None) -> Path:
    """The file :func:`load_transactions` reads for ``path`` (``None``: the bundled copy).

    A folder or glob comes back as given (resolved); :func:`transactions_files` lists its files.
    """
    return Path(path).expanduser().resolve() if path is not None else DEFAULT_DATA_PATH


def transactions_files(path: str | Path | None = None) -> tuple[str, ...]:
    """Every file ``path`` names (one, or a folder's or glob's Parquet files), for ``TaskData.sources``."""
    return tuple(
        str(p) for p in resolve_sources(path if path is not None else DEFAULT_DATA_PATH).files
    )


#: The canonical columns' SQL types; ``DOUBLE NULL``: an unreadable CustomerID becomes NULL.
CANONICAL_TYPES: dict[str, str] = {
    "InvoiceNo": "VARCHAR",
    "StockCode": "VARCHAR",
    "Description": "VARCHAR",
    "Quantity": "BIGINT",
    "InvoiceDate": "TIMESTAMP",
    "UnitPrice": "DOUBLE",
    "CustomerID": "DOUBLE NULL",
    "Country": "VARCHAR",
}

#: Whitespace as Python's ``str.strip()`` sees it (RE2's ``\s`` alone misses \v, NBSP, ...).
_SPACE = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"


def _strip(column: str) -> str:
    return f"regexp_replace({column}, '^{_SPACE}+|{_SPACE}+$', '', 'g')"


def _clean_query() -> str:
    """TASKS.md's "Cleaning" in SQL over the view ``raw``: the same rows as :func:`clean_transactions`."""
    codes = ", ".join("'" + c.replace("'", "''") + "'" for c in sorted(NON_PRODUCT_CODES))
    prefixes = " OR ".join(f"starts_with(stock_code, '{p}')" for p in NON_PRODUCT_PREFIXES)
    return f"""
        SELECT * FROM (
            SELECT {_strip('"InvoiceNo"')} AS invoice, upper({_strip('"StockCode"')}) AS stock_code,
                   {_strip('"Description"')} AS description, "Quantity" AS quantity,
                   "InvoiceDate" AS invoice_date, "UnitPrice" AS unit_price,
                   "CustomerID" AS customer_id, "Country" AS country
            FROM raw
        )
        WHERE quantity > 0 AND unit_price > 0 AND NOT starts_with(invoice, 'C')
          -- the source stores missing descriptions as the string "nan"
          AND description IS NOT NULL AND description NOT IN ('nan', '')
          AND stock_code NOT IN ({codes}) AND NOT ({prefixes})
    """


#: Each product's description: its most frequent cleaned Description, ties alphabetical.
_PRODUCTS_QUERY = """
    SELECT stock_code, first(description ORDER BY n DESC, description ASC) AS product_description
    FROM (SELECT stock_code, description, count(*) AS n FROM kept GROUP BY stock_code, description)
    GROUP BY stock_code ORDER BY stock_code
"""

RECIPE = warehouse.Recipe(
    canonical=CANONICAL_TYPES,
    clean=_clean_query(),
    products=_PRODUCTS_QUERY,
    version=1,
)


def median_sql(column: str) -> str:
    """SQL aggregate: the median of ``column`` exactly as pandas computes it.

    The mean of the two middle values, ``(a + b) / 2``, for an even count (DuckDB's own
    ``median`` interpolates as ``a + (b - a) / 2``, which can differ in the last bit).
    """
    ordered = f"list_sort(list({column}))"
    return f"(({ordered})[(count({column}) + 1) // 2] + ({ordered})[count({column}) // 2 + 1]) / 2"


def cleaned_table(
    path: str | Path | None = None, column_map: Mapping[str, str] | None = None
) -> warehouse.Cleaned:
    """The cleaned table of ``path`` as Parquet on disk (built once, then cached; see :mod:`.warehouse`)."""
    column_map = dict(column_map or {})
    _check_column_map(column_map)
    return warehouse.cleaned(path if path is not None else DEFAULT_DATA_PATH, column_map, RECIPE)


def open_transactions(
    path: str | Path | None = None, column_map: Mapping[str, str] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose view ``clean`` is the cleaned table (module docstring's columns).

    The built-in builders aggregate there, so the whole table never sits in pandas.
    """
    return warehouse.open_clean(cleaned_table(path, column_map))


def load_transactions(
    path: str | Path | None = None, column_map: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The cleaned table of a file as one pandas frame, read once per (input, column map) and then cached.

    For inputs that fit in memory (a plugin that wants pandas); the built-in tasks query
    :func:`open_transactions` instead. The cache key includes every file's modification
    time and size, so an edited file is re-read.

    The returned frame is shared between callers: select from it, never modify it in place.
    """
    column_map = dict(column_map or {})
    _check_column_map(column_map)
    sources = resolve_sources(path if path is not None else DEFAULT_DATA_PATH)
    return _load_cached(sources.spec, tuple(sorted(column_map.items())), sources.stamp())


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mapping: tuple[tuple[str, str], ...], stamp: tuple) -> pd.DataFrame:
    table = cleaned_table(path, dict(mapping))
    clean = pd.read_parquet(table.rows)
    clean["invoice_date"] = clean["invoice_date"].astype("datetime64[ns]")
    names = pd.read_parquet(table.products).set_index("stock_code")["product_description"]
    clean.insert(3, "product_description", names.reindex(clean["stock_code"]).to_numpy())
    return clean


def customer_rows(clean: pd.DataFrame) -> pd.DataFrame:
    """The cleaned rows that have a customer, with ``customer_id`` as int64.

    The customer-level tasks (``user_profile``, ``recommend``) read only these.
    """
    rows = clean[clean["customer_id"].notna()]
    return rows.assign(customer_id=rows["customer_id"].astype("int64"))


def _check_column_map(column_map: Mapping[str, str]) -> None:
    for canonical in column_map:
        if canonical not in CANONICAL_COLUMNS:
            close = difflib.get_close_matches(canonical, CANONICAL_COLUMNS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"data.columns maps {canonical!r}, which is not a canonical column.{hint} "
                f"Keys are the canonical names ({', '.join(CANONICAL_COLUMNS)}), values the names in your file."
            )


def _read_files(path: str | Path, names: Mapping[str, str]) -> list[pd.DataFrame]:
    """The raw frames of every file ``path`` names, their columns checked first."""
    sources = resolve_sources(path)
    frames = {}
    for file in sources.files:
        try:
            if sources.kind == "parquet":
                frames[file] = pd.read_parquet(file)
            else:
                # Read codes as text: "85048" must not become 85048.0, nor "nan" a float.
                text = {names[c]: str for c in _TEXT_COLUMNS}
                frames[file] = pd.read_csv(file, dtype=text, keep_default_na=False, na_values=[""])
        except (OSError, ValueError, ImportError) as exc:
            raise ValueError(f"cannot read transactions file {file}: {exc}") from exc
    check_columns(
        sources,
        {f: {c: str(t) for c, t in frame.dtypes.items()} for f, frame in frames.items()},
        names,
    )
    return list(frames.values())


def _canonical_dtypes(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    out = {}
    for column in _TEXT_COLUMNS:
        values = frame[column]
        out[column] = values.where(values.isna(), values.astype(str))
    try:
        quantity = pd.to_numeric(frame["Quantity"])
        out["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
        out["UnitPrice"] = pd.to_numeric(frame["UnitPrice"]).astype("float64")
        out["CustomerID"] = pd.to_numeric(frame["CustomerID"], errors="coerce").astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{path}: a column has unexpected values ({exc}). Quantity must be whole numbers, "
            f"InvoiceDate dates, UnitPrice numbers; check the column map (data.columns)."
        ) from exc
    out["Quantity"] = _whole_numbers(quantity, "Quantity", path)
    return pd.DataFrame(out, columns=list(CANONICAL_COLUMNS))


def _whole_numbers(values: pd.Series, column: str, path: Path) -> pd.Series:
    """``values`` as int64, refusing values int64 cannot hold: a cast would wrap them to negative
    numbers, and a quantity of 1e19 would silently become a return and drop out."""
    import numpy as np

    limit = float(np.iinfo(np.int64).max)
    numbers = values.astype("float64")
    bad = numbers[~np.isfinite(numbers) | (numbers.abs() >= limit)]
    if len(bad):
        row, value = bad.index[0], values.loc[bad.index[0]]
        raise ValueError(
            f"{path}: column {column} holds {value} on row {row} (0-based data row; {len(bad)} such row(s)), beyond "
            f"what a whole number can hold (|x| < 9.2e18): fix or drop that row"
        )
    return values.astype("int64")


__all__ = [
    "CANONICAL_COLUMNS",
    "DEFAULT_DATA_PATH",
    "transactions_path",
    "transactions_files",
    "cleaned_table",
    "open_transactions",
    "median_sql",
    "NON_PRODUCT_CODES",
    "NON_PRODUCT_PREFIXES",
    "bucket",
    "clean_transactions",
    "customer_key",
    "customer_rows",
    "load_transactions",
    "product_descriptions",
    "read_transactions",
    "split_customers",
    "split_of",
    "split_products",
]
