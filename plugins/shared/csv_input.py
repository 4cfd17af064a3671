"""A CSV ``data.path`` read by DuckDB itself, streamed: its memory does not grow with the file.

One job: turn one CSV file into a ``read_csv(...)`` table expression whose columns already
have the types a recipe wants, read the way the pandas reader (``retail.read_transactions``)
read it, so the cleaned table is the same value for value:

- comma-separated, ``"`` quotes, a header line (pandas' defaults);
- text columns as text (``"85048"`` stays ``"85048"``; ``"nan"`` stays the string ``"nan"``),
  an empty field as missing;
- dates in the format pandas guesses from the column's first date (``12/1/2010 8:26`` ->
  ``%m/%d/%Y %H:%M``), every date then held to that format;
- numbers parsed by DuckDB's reader, so a value that does not convert is reported with its line.

``.csv`` and ``.csv.gz`` are read directly. DuckDB has no reader for ``.csv.bz2``, ``.csv.xz``
or ``.csv.zip``: those are first decompressed, in 1 MiB pieces, to a temporary file beside the
cache (disk, not memory), deleted once the table is built.
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

#: Suffixes DuckDB's reader decompresses itself.
_NATIVE = (".csv", ".csv.gz")
#: The dialect pandas' ``read_csv`` assumes by default (DuckDB would otherwise sniff one).
_DIALECT = "header = true, delim = ',', quote = '\"', escape = '\"'"
#: An example of a format every reader takes, for messages.
_ISO_EXAMPLE = "2011-01-31 09:30:00"


def literal(value: str | Path) -> str:
    """``value`` as a SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


@contextmanager
def readable(file: Path, scratch: Path) -> Iterator[Path]:
    """``file`` itself when DuckDB reads it, else a decompressed temporary copy in ``scratch``.

    Raises:
        ValueError: a zip archive that does not hold exactly one file, or a file that does
            not decompress; naming the file and the fix.
    """
    name = file.name.lower()
    if name.endswith(_NATIVE):
        yield file
        return
    scratch.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".csv.tmp", dir=scratch)
    try:
        try:
            with os.fdopen(handle, "wb") as out, _open_compressed(file) as source:
                shutil.copyfileobj(source, out, length=1 << 20)
        except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"cannot decompress transactions file {file}: {error}. Check the file, or give it "
                f"uncompressed or as .csv.gz."
            ) from None
        yield Path(temporary)
    finally:
        Path(temporary).unlink(missing_ok=True)


@contextmanager
def _open_compressed(file: Path) -> Iterator[IO[bytes]]:
    name = file.name.lower()
    if name.endswith(".bz2"):
        with bz2.open(file, "rb") as stream:
            yield stream
        return
    if name.endswith(".xz"):
        with lzma.open(file, "rb") as stream:
            yield stream
        return
    with zipfile.ZipFile(file) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            raise ValueError(
                f"transactions file {file} holds {len(members)} files; a .csv.zip must hold exactly one CSV "
                f"(or give the CSV itself, or as .csv.gz)."
            )
        with archive.open(members[0]) as stream:
            yield stream


def columns(con: duckdb.DuckDBPyConnection, file: Path) -> dict[str, str]:
    """The header's column names (each ``VARCHAR``: nothing is typed yet)."""
    rows = con.execute(
        f"DESCRIBE SELECT * FROM read_csv({literal(file)}, {_DIALECT}, all_varchar = true)"
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def date_format(con: duckdb.DuckDBPyConnection, file: Path, column: str) -> str | None:
    """The ``strptime`` format pandas would guess from ``column``'s first non-empty value.

    ``None`` when the column has no value at all. Reads only up to that first value.

    Raises:
        ValueError: the first date is in no format pandas recognises; naming it and the fix.
    """
    from pandas.tseries.api import guess_datetime_format

    found = con.execute(
        f'SELECT "{column}" FROM read_csv({literal(file)}, {_DIALECT}, all_varchar = true) '
        f'WHERE "{column}" IS NOT NULL LIMIT 1'
    ).fetchone()
    if found is None:
        return None
    guessed = guess_datetime_format(found[0])
    if guessed is None:
        raise ValueError(
            f"{file}: column {column} starts with {found[0]!r}, which is not a date in a format this reader "
            f"recognises. Write every date in one format, e.g. {_ISO_EXAMPLE} (or 12/31/2011 09:30)."
        )
    return str(guessed)


def table(file: Path, types: Mapping[str, str], timestamp_format: str | None) -> str:
    """The ``read_csv(...)`` table expression of ``file``.

    Args:
        file: a CSV DuckDB reads (see :func:`readable`).
        types: the file's column name -> DuckDB type, for the columns to type; others stay text.
        timestamp_format: the ``strptime`` format of every ``TIMESTAMP`` column.
    """
    typed = ", ".join(f"{literal(name)}: {literal(kind)}" for name, kind in types.items())
    fmt = f", timestampformat = {literal(timestamp_format)}" if timestamp_format else ""
    # all_varchar: a column the recipe does not type stays text, never typed from a guess on a sample
    # (DuckDB parses only the columns a query selects, so such a column costs nothing either way).
    return f"read_csv({literal(file)}, {_DIALECT}, all_varchar = true, types = {{{typed}}}{fmt})"


_LINE = re.compile(r"CSV Error on Line: (\d+)")
_VALUE = re.compile(r'converting column "(.*?)"\. Could not (?:convert|parse) string "(.*?)"')


def conversion_error(
    file: Path, message: str, types: Mapping[str, str], timestamp_format: str | None
) -> str | None:
    """A message naming the file, line, column, value and fix for DuckDB's "CSV Error on Line".

    ``None`` when ``message`` is neither a value that failed to convert nor text that is not UTF-8.
    """
    line, value = _LINE.search(message), _VALUE.search(message)
    if line is not None and "not utf-8 encoded" in message:
        return (
            f'{file}: line {line.group(1)} is not UTF-8 text. Save the file as UTF-8 (Excel: "CSV UTF-8"), '
            f"or convert it, e.g. iconv -f latin1 -t utf-8 {file.name} > utf8.csv."
        )
    if line is None or value is None:
        return None
    column, text = value.group(1), value.group(2)
    kind = types.get(column, "VARCHAR")
    row = int(line.group(1)) - 2  # line 1 is the header; rows count from 0 as in pandas
    where = f"{file}: column {column} holds {text!r} on row {row} (0-based data row; line {line.group(1)} of the file)"
    if kind == "BIGINT":
        return (
            f"{where}, which is not a whole number (|x| < 9.2e18). Quantity must be whole numbers: fix or drop "
            f"that row, or check the column map (data.columns)."
        )
    if kind == "TIMESTAMP":
        return (
            f"{where}, which is not a date in the file's format {timestamp_format} (guessed from its first "
            f"date). Write every date in one format, e.g. {_ISO_EXAMPLE}, or fix that row."
        )
    return f"{where}, which is not a number: fix or drop that row, or check the column map (data.columns)."
