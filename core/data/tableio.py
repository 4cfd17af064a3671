"""Read and write tables as CSV, Parquet or JSON Lines, chosen by file suffix."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from shopmtl.core.files import atomic_file

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


class TableFormatError(ValueError):
    """A table's format is unknown or its content unreadable."""


def table_format(path: str | Path) -> str:
    """``csv``, ``parquet`` or ``jsonl``, from the suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise TableFormatError(
            f"{path}: unknown table format {suffix or '(no suffix)'}; use .csv, .parquet or .jsonl"
        )
    return FORMATS[suffix]


#: What starts a spreadsheet formula (OWASP's "CSV injection" list): = + - @ tab, carriage return.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def escape_cell(value: object) -> object:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula.

    Numbers pass through: a numeric cell is not text, and text that is a plain number
    (``-3.5``, ``+1e3``) cannot run as a formula, so it keeps its value.
    """
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_START)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell (and column name) escaped by :func:`escape_cell`.

    For CSV written for people: Excel, LibreOffice and Google Sheets run a cell such as
    ``=HYPERLINK(...)`` from a CSV file as a formula. Numeric columns are not touched.
    """
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c].dtype)]
    escaped = frame.copy(deep=False) if text else frame
    for column in text:
        escaped[column] = frame[column].map(escape_cell, na_action="ignore")
    return escaped.rename(columns=lambda c: escape_cell(c) if isinstance(c, str) else c)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table; errors name the file and what is wrong with it."""
    path = Path(path)
    kind = table_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        if kind == "csv":
            return pd.read_csv(path)
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True)
    except Exception as error:  # pandas raises many types; the user needs the file and the reason
        raise TableFormatError(f"cannot read {path} as {kind}: {error}") from None


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a table in the format its suffix names, atomically (no half-written file)."""
    path = Path(path)
    kind = table_format(path)
    with atomic_file(path) as temporary:
        if kind == "csv":
            frame.to_csv(temporary, index=False)
        elif kind == "parquet":
            frame.to_parquet(temporary, index=False)
        else:
            frame.to_json(temporary, orient="records", lines=True, date_format="iso")


#: Rows per Parquet row group when :func:`write_rows` streams a large frame.
ROWS_PER_CHUNK = 200_000


def write_rows(frame: pd.DataFrame, path: str | Path) -> None:
    """:func:`write_table` for a task's rows, however many: Parquet is written chunk by chunk.

    A task's rows repeat long texts (recommend: a customer's history on each of their
    candidates), which pyarrow would copy out once per row -- gigabytes at scale. Each
    chunk hands repeated text columns over as a dictionary (one copy per distinct text);
    the file stores plain strings (no Arrow or pandas schema), so it reads back with the
    values and column types of :func:`write_table`'s output.
    """
    path = Path(path)
    if table_format(path) != "parquet":
        write_table(frame, path)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = _repeated_texts(frame.iloc[:ROWS_PER_CHUNK])
    with atomic_file(path) as temporary:
        writer, schema = None, None
        try:
            for start in range(0, max(len(frame), 1), ROWS_PER_CHUNK):
                chunk = frame.iloc[start : start + ROWS_PER_CHUNK]
                chunk = chunk.assign(**{name: _categorical(chunk[name]) for name in texts})
                table = pa.Table.from_pandas(chunk, preserve_index=False).replace_schema_metadata(
                    None
                )
                if writer is None:
                    schema = pa.schema(
                        [
                            f.with_type(pa.dictionary(pa.int32(), pa.string()))
                            if f.name in texts
                            else f
                            for f in table.schema
                        ]
                    )
                    writer = pq.ParquetWriter(temporary, schema, store_schema=False)
                writer.write_table(table.cast(schema))
        finally:
            if writer is not None:
                writer.close()


def _repeated_texts(sample: pd.DataFrame) -> list[str]:
    """Text columns whose values repeat (fewer distinct than half the sampled rows)."""
    return [
        name
        for name, column in sample.items()
        if (column.dtype == object or pd.api.types.is_string_dtype(column.dtype))
        and column.map(lambda v: isinstance(v, str) or pd.isna(v)).all()
        and column.nunique(dropna=True) * 2 < len(column)
    ]


def _categorical(column: pd.Series) -> pd.Series:
    """``column`` as a categorical of its distinct texts (one copy each when handed to Arrow)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    categories = pd.Index(np.asarray(uniques, dtype=object), dtype=object)
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=categories),
        index=column.index,
        name=column.name,
    )
