"""A split as a plugin may hand it over (hook API 1.3): a pandas frame, Arrow, or Parquet on disk.

``TaskData.splits[name]`` may be

* a ``pandas.DataFrame`` (as always);
* a ``pyarrow.Table`` or a ``pyarrow.dataset.Dataset`` (e.g. ``pyarrow.dataset.dataset(folder)``);
* a ``str`` or ``os.PathLike``: a Parquet file, a folder of Parquet files, or a list of files.

A builder that writes its rows to Parquet as it goes never has to hold them as pandas
frames; shopmtl checks the columns against the file's schema before reading any row, and
reads Parquet memory-mapped. :func:`split_frame` turns any of them into the pandas frame
the engine encodes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as pads

#: What ``TaskData.splits`` may hold for one split.
SplitSource = Union["pd.DataFrame", "pa.Table", "pads.Dataset", str, "os.PathLike[str]", Sequence[str]]


def _is_path(value: Any) -> bool:
    if isinstance(value, (str, os.PathLike)):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, (str, os.PathLike)) for v in value)


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
        return ", ".join(os.fspath(v) for v in value) if isinstance(value, (list, tuple)) else os.fspath(value)
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
            raise ValueError(f"split {describe(value)} lacks column(s) {missing}; it has {dataset.schema.names}")
    # Handed to pandas block by block, freeing each Arrow column once converted (no second full copy).
    table = dataset.to_table(columns=list(columns) if columns is not None else None)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def shard_bounds(n_rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of process ``rank`` of ``world_size``: contiguous, sizes differing by at most one."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard {rank} of {world_size}: need world_size >= 1 and 0 <= rank < world_size")
    return n_rows * rank // world_size, n_rows * (rank + 1) // world_size


def shard_frame(value: Any, rank: int, world_size: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Process ``rank``'s share of a split (:func:`shard_bounds`) as a pandas frame.

    The seam for multi-process data loading: an Arrow or Parquet split is streamed record
    batch by record batch and only the batches overlapping this shard are kept, so a
    process holds its shard, never the whole split. A pandas split is sliced.
    """
    import pandas as pd
    import pyarrow as pa

    if isinstance(value, pd.DataFrame):
        start, stop = shard_bounds(len(value), rank, world_size)
        frame = value.iloc[start:stop]
        return frame if columns is None else frame[list(columns)]
    dataset = _dataset(value) if is_split_source(value) else split_frame(value)  # split_frame raises the TypeError
    start, stop = shard_bounds(dataset.count_rows(), rank, world_size)
    kept, seen = [], 0
    for batch in dataset.to_batches(columns=list(columns) if columns is not None else None):
        low, high = max(start - seen, 0), min(stop - seen, batch.num_rows)
        if high > low:
            kept.append(batch.slice(low, high - low))
        seen += batch.num_rows
        if seen >= stop:
            break
    schema = dataset.schema if columns is None else pa.schema([dataset.schema.field(c) for c in columns])
    return pa.Table.from_batches(kept, schema=schema).to_pandas(split_blocks=True, self_destruct=True)
