"""Read and write tables as CSV, Parquet or JSON Lines, chosen by file suffix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shopmtl.core.files import atomic_file

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class TableFormatError(ValueError):
    """A table's format is unknown or its content unreadable."""


def table_format(path: str | Path) -> str:
    """``csv``, ``parquet`` or ``jsonl``, from the suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise TableFormatError(f"{path}: unknown table format {suffix or '(no suffix)'}; use .csv, .parquet or .jsonl")
    return FORMATS[suffix]


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
