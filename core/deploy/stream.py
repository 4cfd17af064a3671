"""Predict files of any size: read, predict and write in chunks of rows, atomically.

CSV, Parquet and JSON Lines are read with pyarrow's streaming readers, a block of rows
at a time, and written chunk by chunk to a temporary sibling of the output that is
renamed into place at the end: memory stays that of one chunk however large the file,
and an interrupted or failed run leaves no half-written output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from shopmtl.core.data.tableio import TableFormatError, escape_formulas, table_format
from shopmtl.core.files import atomic_file

#: Rows per chunk: large enough that per-chunk overheads vanish, small enough that a
#: chunk's frames and encoder activations stay a few tens of MB.
CHUNK_ROWS = 8192
_CSV_BLOCK_BYTES = 4 << 20

Predict = Callable[[pd.DataFrame, int], pd.DataFrame]
"""``(chunk, first row number) -> chunk with prediction columns``."""


def check_paths(input_path: str | Path, output_path: str | Path) -> None:
    """Refuse, before anything is read, an output that is the input or of another format."""
    source, target = Path(input_path), Path(output_path)
    if table_format(source) != table_format(target):
        raise TableFormatError(
            f"--output {target} must have the input's format ({table_format(source)})"
        )
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist")
    if target.resolve() == source.resolve():
        raise TableFormatError(
            f"--output {target} is the input file itself: write the predictions to another file"
        )


def read_chunks(path: str | Path, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The table at ``path`` as frames of at most ``rows`` rows; at least one (maybe empty)
    unless the file is an empty JSON Lines file, which has no columns to give."""
    path = Path(path)
    kind = table_format(path)
    try:
        batches = {"csv": _csv_batches, "parquet": _parquet_batches, "jsonl": _jsonl_batches}[kind](
            path, rows
        )
        schema = next(batches)
        if schema is None:
            return
        empty = True
        for batch in batches:
            for start in range(0, batch.num_rows, rows):
                empty = False
                yield batch.slice(start, rows).to_pandas()
        if empty:
            yield schema.empty_table().to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise TableFormatError(f"cannot read {path} as {kind}: {error}") from None


def _csv_batches(path: Path, rows: int) -> Iterator[Any]:
    from pyarrow import csv

    options = csv.ReadOptions(block_size=_CSV_BLOCK_BYTES)
    reader = csv.open_csv(path, read_options=options)
    # Types are inferred from the first block; a column empty there would be typed null
    # and fail on the first later value, so read such columns as text.
    empty = {f.name: pa.string() for f in reader.schema if pa.types.is_null(f.type)}
    if empty:
        reader = csv.open_csv(
            path, read_options=options, convert_options=csv.ConvertOptions(column_types=empty)
        )
    yield reader.schema
    yield from reader


def _parquet_batches(path: Path, rows: int) -> Iterator[Any]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    yield table.schema_arrow
    yield from table.iter_batches(batch_size=rows)


def _jsonl_batches(path: Path, rows: int) -> Iterator[Any]:
    from pyarrow import json

    if path.stat().st_size < 1024 and not path.read_bytes().strip():
        yield None  # an empty JSON Lines file: no rows, no columns
        return
    reader = json.open_json(path, read_options=json.ReadOptions(block_size=_CSV_BLOCK_BYTES))
    yield reader.schema
    yield from reader


class ChunkWriter:
    """Appends frames to a table file of the format its suffix names (see :func:`open_writer`)."""

    def __init__(self, handle: IO[bytes], kind: str, csv_escape: bool = True) -> None:
        self._handle = handle
        self._kind = kind
        self._escape = csv_escape
        self._parquet: Any = None
        self._started = False
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame``; the first frame fixes the header (CSV) or schema (Parquet)."""
        if self._kind == "csv":
            out = escape_formulas(frame) if self._escape else frame  # formula injection (OWASP)
            out.to_csv(self._handle, index=False, header=not self._started)
        elif self._kind == "jsonl":
            if len(frame):
                text = frame.to_json(orient="records", lines=True, date_format="iso")
                self._handle.write(text.encode("utf-8") + (b"" if text.endswith("\n") else b"\n"))
        else:
            self._write_parquet(frame)
        self._started = True
        self.rows += len(frame)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._handle, table.schema)
        elif table.schema != self._parquet.schema:
            try:
                table = table.cast(self._parquet.schema)
            except (pa.ArrowException, ValueError) as error:
                raise TableFormatError(
                    f"rows {self.rows + 1}-{self.rows + len(frame)} do not fit the types of the "
                    f"first rows ({error})"
                ) from None
        self._parquet.write_table(table)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()


@contextlib.contextmanager
def open_writer(path: str | Path, csv_escape: bool = True) -> Iterator[ChunkWriter]:
    """A :class:`ChunkWriter` on a temporary sibling of ``path``, renamed into place on success.

    ``csv_escape``: CSV text cells that start a formula get a leading ``'`` (Parquet and
    JSON Lines are data formats no spreadsheet runs, so they are written as they are).
    """
    path = Path(path)
    kind = table_format(path)
    with atomic_file(path) as temporary, open(temporary, "wb") as handle:
        writer = ChunkWriter(handle, kind, csv_escape)
        try:
            yield writer
        finally:
            writer.close()  # also on failure: the temporary file is then removed, complete or not


def check_finite(frame: pd.DataFrame, columns: list[str], source: str, first_row: int) -> None:
    """Refuse infinite values and text in numeric input ``columns`` (NaN and empty cells mean missing).

    Text such as ``"12 units"`` would otherwise become a missing value without a word.
    """
    for column in columns:
        if column not in frame.columns:
            continue
        raw = frame[column]
        numbers = pd.to_numeric(raw, errors="coerce")
        text = np.flatnonzero(
            numbers.isna().to_numpy()
            & raw.notna().to_numpy()
            & ~raw.astype(str).str.strip().isin(["", "nan", "NaN"]).to_numpy()
        )
        if len(text):
            raise ValueError(
                f"{source}: row {first_row + int(text[0])} has {raw.iloc[text[0]]!r} in numeric column "
                f"'{column}', which is not a number ({len(text)} such rows in this chunk); write a number, "
                "or leave the cell empty for a missing value"
            )
        values = numbers.to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isinf(values))
        if len(bad):
            raise ValueError(
                f"{source}: row {first_row + int(bad[0])} has {values[bad[0]]} in numeric column "
                f"'{column}' ({len(bad)} such rows in this chunk); use a finite value, or leave the "
                "cell empty for a missing value"
            )


def predict_file(
    input_path: str | Path,
    output_path: str | Path,
    predict: Predict,
    rows: int = CHUNK_ROWS,
    csv_escape: bool = True,
) -> int:
    """Stream ``input_path`` through ``predict`` into ``output_path``; the number of rows written.

    Row numbers given to ``predict`` count data rows from 1, as people do. ``csv_escape``:
    see :func:`open_writer`.
    """
    check_paths(input_path, output_path)
    with open_writer(output_path, csv_escape) as writer:
        for chunk in read_chunks(input_path, rows):
            writer.write(predict(chunk, writer.rows + 1))
        return writer.rows
