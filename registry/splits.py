"""A split as a plugin may hand it over (hook API 1.3): a pandas frame, Arrow, or Parquet on disk.

``TaskData.splits[name]`` may be

* a ``pandas.DataFrame`` (as always);
* a ``pyarrow.Table`` or a ``pyarrow.dataset.Dataset`` (e.g. ``pyarrow.dataset.dataset(folder)``);
* a ``str`` or ``os.PathLike``: a Parquet file, a folder of Parquet files, or a list of files.

A builder that writes its rows to Parquet as it goes never has to hold them as pandas
frames; shopmtl checks the columns against the file's schema before reading any row, and
reads Parquet memory-mapped. :func:`split_frame` turns any of them into one pandas frame
(val and test); :func:`split_chunks` hands a training process the rows it trains on, a
chunk at a time, so a large train split is never held whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as pads

#: What ``TaskData.splits`` may hold for one split.
SplitSource = Union[
    "pd.DataFrame", "pa.Table", "pads.Dataset", str, "os.PathLike[str]", Sequence[str]
]


def _is_path(value: Any) -> bool:
    if isinstance(value, (str, os.PathLike)):
        return True
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, (str, os.PathLike)) for v in value)
    )


def _dataset(value: Any) -> pads.Dataset:
    """The Arrow dataset behind a path (file, folder, list of files) or an Arrow object."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    if isinstance(value, pads.Dataset):
        return value
    if isinstance(value, pa.Table):
        return pads.dataset(value)
    from pyarrow import fs

    paths = [os.fspath(v) for v in value] if isinstance(value, (list, tuple)) else os.fspath(value)
    try:  # memory-mapped: the pages are the file's, not a copy in this process's heap
        return pads.dataset(paths, format="parquet", filesystem=fs.LocalFileSystem(use_mmap=True))
    except (OSError, ValueError) as error:  # a missing path, a file that is not Parquet
        raise ValueError(f"cannot read split {describe(value)} as Parquet: {error}") from None


def describe(value: Any) -> str:
    """A short name of a split source, for messages (the path, or the type)."""
    if _is_path(value):
        return (
            ", ".join(os.fspath(v) for v in value)
            if isinstance(value, (list, tuple))
            else os.fspath(value)
        )
    return type(value).__name__


def is_split_source(value: Any) -> bool:
    """Whether ``value`` is one of the :data:`SplitSource` kinds."""
    import pandas as pd

    if isinstance(value, pd.DataFrame) or _is_path(value):
        return True
    try:
        import pyarrow as pa
        import pyarrow.dataset as pads
    except ImportError:  # pragma: no cover -- pyarrow is a dependency
        return False
    return isinstance(value, (pa.Table, pads.Dataset))


def split_columns(value: Any) -> list[str]:
    """The column names of a split, from its schema (no row is read)."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return [str(c) for c in value.columns]
    return list(_dataset(value).schema.names)


def file_problems(value: Any, columns: Sequence[str]) -> list[str]:
    """Files of a Parquet split that lack one of ``columns`` the other files have, or hold it as
    another type than the other files, each a sentence naming the odd file and the fix; none for
    other split kinds.

    Only the files' footers are read. A file missing a column would otherwise be read as
    nulls, and one of another type fail half-way through a scan. The odd file is the one
    whose type most files do not share (not simply the first file's), so the message
    blames the file to rewrite. A column every file lacks is the split's problem, not a
    file's: :func:`split_columns` callers report it.
    """
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return []
    dataset = _dataset(value)
    schemas = [
        (fragment.path, fragment.physical_schema)
        for fragment in dataset.get_fragments()
        if getattr(fragment, "path", None) is not None  # an in-memory Arrow table: one schema
    ]
    problems = []
    for path, schema in schemas:
        missing = [
            c
            for c in columns
            if c not in schema.names and any(c in other.names for _, other in schemas)
        ]
        if missing:
            problems.append(
                f"{path} lacks column(s) {missing} that the other files of the split have; "
                "write every file of a split with the same columns"
            )
    for column in columns:
        types = {p: s.field(column).type for p, s in schemas if column in s.names}
        problems += _type_problems(column, types, dataset.schema)
    return problems


def _type_problems(column: str, types: dict[str, pa.DataType], schema: pa.Schema) -> list[str]:
    """The files whose type of ``column`` the scan cannot read as the others', named."""
    if column not in schema.names:
        return []
    read_as = schema.field(column).type  # what a scan casts every file to
    if all(_readable_as(t, read_as) for t in types.values()):
        return []
    kinds: dict[str, list[str]] = {}
    for path, found in types.items():
        kinds.setdefault(_kind(found), []).append(path)
    common = max(kinds, key=lambda k: len(kinds[k]))
    fix = "write it with one type in every file"
    if len(kinds[common]) * 2 <= len(types):  # no majority: name every file's type
        listed = "; ".join(f"{p} has {types[p]}" for p in types)
        return [f"the files of the split disagree on column {column!r}: {listed}; {fix}"]
    others = len(kinds[common])
    usual = types[kinds[common][0]]
    return [
        f"{path}: column {column!r} is {types[path]}, where the split's other "
        f"{others} file{'s' if others != 1 else ''} have {usual}; {fix}"
        for kind, paths in kinds.items()
        if kind != common
        for path in paths
    ]


def _kind(t: pa.DataType) -> str:
    """A type's family: a scan reads any member of a family as another (and an integer as a float)."""
    import pyarrow as pa

    t = t.value_type if pa.types.is_dictionary(t) else t
    checks = {
        "integer": pa.types.is_integer,
        "floating": pa.types.is_floating,
        "boolean": pa.types.is_boolean,
        "text": lambda x: (
            pa.types.is_string(x) or pa.types.is_large_string(x) or str(x) == "string_view"
        ),
        "time": pa.types.is_temporal,
        "null": pa.types.is_null,
    }
    return next((name for name, check in checks.items() if check(t)), str(t))


def _readable_as(found: pa.DataType, expected: pa.DataType) -> bool:
    """Whether a scan reads a column of type ``found`` as ``expected`` without failing on its values."""
    found_kind, expected_kind = _kind(found), _kind(expected)
    return (
        found_kind == expected_kind
        or "null" in (found_kind, expected_kind)
        or (found_kind, expected_kind) == ("integer", "floating")
    )


def split_frame(value: Any, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The split as a pandas frame (``columns``: only those, in that order; ``None``: all).

    Raises:
        TypeError: ``value`` is none of the :data:`SplitSource` kinds.
        ValueError: a Parquet path that cannot be read, or a named column it lacks.
    """
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value if columns is None else value[list(columns)]
    if not is_split_source(value):
        raise TypeError(
            f"a split is {type(value).__name__}; hand over a pandas DataFrame, a pyarrow Table or Dataset, "
            "or the path of Parquet rows (a file, a folder or a list of files)"
        )
    dataset = _dataset(value)
    if columns is not None:
        missing = [c for c in columns if c not in dataset.schema.names]
        if missing:
            raise ValueError(
                f"split {describe(value)} lacks column(s) {missing}; it has {dataset.schema.names}"
            )
    # Handed to pandas block by block, freeing each Arrow column once converted (no second full copy).
    table = dataset.to_table(columns=list(columns) if columns is not None else None)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def split_length(value: Any) -> int:
    """Rows of a split, from its metadata where it is on disk (no row is read)."""
    import pandas as pd

    return len(value) if isinstance(value, pd.DataFrame) else _dataset(value).count_rows()


def split_chunks(
    value: Any, positions: np.ndarray, chunk_rows: int, columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The rows of a split at ``positions`` (ascending), ``chunk_rows`` at a time, as pandas frames.

    Each frame's index is the rows' positions in the split, so a message about a row names
    the split's own row. An Arrow or Parquet split is scanned record batch by record batch
    and only the wanted rows of each batch are kept: a process that trains on a share of a
    large split holds one chunk of it at a time, never the whole split.
    """
    import pandas as pd

    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) > 1 and np.any(np.diff(positions) <= 0):
        raise ValueError("split_chunks needs ascending, distinct positions")
    if isinstance(value, pd.DataFrame):
        for start in range(0, len(positions), chunk_rows):
            frame = value.iloc[positions[start : start + chunk_rows]]
            frame = frame.set_axis(pd.Index(positions[start : start + chunk_rows]))
            yield frame if columns is None else frame[list(columns)]
        return
    yield from _scan_chunks(_dataset(value), positions, chunk_rows, columns)


def _scan_chunks(
    dataset: pads.Dataset, positions: np.ndarray, chunk_rows: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    import pandas as pd
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []  # wanted rows read but not yet handed out
    seen = taken = emitted = 0  # rows scanned, wanted rows read, wanted rows handed out

    def emit(rows: int) -> pd.DataFrame:
        nonlocal pending, emitted
        table = pa.Table.from_batches(pending)
        pending = table.slice(rows).to_batches()
        frame = table.slice(0, rows).to_pandas(split_blocks=True, self_destruct=True)
        frame.index = pd.Index(positions[emitted : emitted + rows])
        emitted += rows
        return frame

    for batch in dataset.to_batches(columns=list(columns) if columns is not None else None):
        stop = int(np.searchsorted(positions, seen + batch.num_rows))
        if stop > taken:
            pending.append(batch.take(pa.array(positions[taken:stop] - seen)))
            taken = stop
        seen += batch.num_rows
        while taken - emitted >= chunk_rows:
            yield emit(chunk_rows)
        if taken == len(positions):
            break
    if taken < len(positions):
        raise ValueError(
            f"the split has {seen:,} rows; row {int(positions[taken]):,} was asked for"
        )
    if taken > emitted:
        yield emit(taken - emitted)


def split_batches(
    value: Any, chunk_rows: int, columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Every row of a split, ``chunk_rows`` at a time, as pandas frames indexed by row position.

    What a check or a fit over a whole split reads: one chunk is held at a time, so the
    memory it takes is flat in the split's size (no positions array, no whole frame).
    """
    import pandas as pd
    import pyarrow as pa

    if isinstance(value, pd.DataFrame):
        for start in range(0, len(value), chunk_rows):
            frame = value.iloc[start : start + chunk_rows]
            frame = frame.set_axis(pd.RangeIndex(start, start + len(frame)))
            yield frame if columns is None else frame[list(columns)]
        return
    done = 0
    for batch in _dataset(value).to_batches(
        columns=list(columns) if columns is not None else None, batch_size=chunk_rows
    ):
        if batch.num_rows:
            frame = pa.Table.from_batches([batch]).to_pandas(split_blocks=True)
            frame.index = pd.RangeIndex(done, done + batch.num_rows)
            done += batch.num_rows
            yield frame


def split_files(value: Any) -> list[tuple[str, int]]:
    """``(path, rows)`` of each file of a Parquet split, in the order a scan reads them; ``[]``
    for a frame or an in-memory table. From the files' footers: no row is read."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return []
    return [
        (fragment.path, fragment.count_rows())
        for fragment in _dataset(value).get_fragments()
        if getattr(fragment, "path", None) is not None
    ]


def shard_frame(
    value: Any, rank: int, world_size: int, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Rows ``[n * rank // world_size, n * (rank + 1) // world_size)`` of a split, as one pandas frame.

    .. deprecated:: 1.4 a run now reads a process's share itself (:func:`split_chunks`, chunk
       by chunk); read rows at chosen positions with ``split_chunks``. Removed in shopmtl 0.3.0.
    """
    import warnings

    import pandas as pd

    warnings.warn(
        "shopmtl.registry.splits.shard_frame is deprecated and goes away in shopmtl 0.3.0: use "
        "`split_chunks(source, positions, chunk_rows, columns)`",
        DeprecationWarning,
        stacklevel=2,
    )
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"shard {rank} of {world_size}: need world_size >= 1 and 0 <= rank < world_size"
        )
    n = split_length(value)
    start, stop = n * rank // world_size, n * (rank + 1) // world_size
    chunks = list(split_chunks(value, np.arange(start, stop), max(stop - start, 1), columns))
    return chunks[0] if chunks else pd.DataFrame(columns=list(columns or split_columns(value)))
