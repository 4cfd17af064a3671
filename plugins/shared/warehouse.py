"""The cleaned transactions as Parquet on disk, queried with DuckDB: the built-in builders' engine.

TASKS.md's cleaning ("Cleaning") runs once per input as one DuckDB query that streams the
raw files into ``rows.parquet`` (the kept invoice lines, in file order) and
``products.parquet`` (each product's description). Every builder then asks DuckDB for
small aggregates (per product, per week, per customer) instead of holding the whole table
in pandas, so memory follows the size of the answers, not of the data.

The cache folder is keyed by the input files' paths, sizes and modification times, the
column map and the recipe (:class:`Recipe`): an edited file or a new cleaning gets a new folder,
so a stale table is never read. Each file is written under a temporary name and renamed
into place, so an interrupted build leaves nothing a later run trusts; a file lock lets one
process build a folder while the others (a multi-process run's) wait for it.

A CSV input is streamed by DuckDB's own reader (:mod:`.csv_input`), as Parquet inputs are:
no input is ever held whole in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopmtl.plugins.shared import csv_input
from shopmtl.plugins.shared.csv_input import literal as _literal
from shopmtl.plugins.shared.sources import Sources, check_columns, resolve_sources
from shopmtl.registry.cachedir import cache_root

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

#: Bump when this module's way of building the table changes (the recipe has its own version).
#: 2: CSV read by DuckDB (was: pandas, staged as Parquet).
ENGINE_VERSION = 2


@dataclass(frozen=True)
class Recipe:
    """How one input layout is cleaned: what the caller knows, the engine does not."""

    canonical: Mapping[
        str, str
    ]  # canonical column -> SQL type ("DOUBLE NULL": unreadable values become NULL)
    clean: str  # SELECT over the view ``raw`` (canonical, typed columns): the kept rows
    products: str  # SELECT over the view ``kept`` (those rows): one row per product
    version: int  # bump when the recipe changes: older cache folders are then never read


@dataclass(frozen=True)
class Cleaned:
    """The cleaned table of one input, on disk."""

    sources: Sources
    rows: Path  # the kept lines: invoice, stock_code, description, quantity, invoice_date, unit_price, customer_id, country
    products: Path  # stock_code -> product_description, sorted by stock_code


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to the cache folder rather than growing past its limit.

    ``SHOPMTL_DUCKDB_MEMORY`` (default ``2GB``) caps DuckDB's own buffers; ``SHOPMTL_DUCKDB_THREADS``
    its threads (default: DuckDB's, one per core).
    """
    import duckdb

    spill = cache_root() / "spill"
    spill.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "memory_limit": os.environ.get("SHOPMTL_DUCKDB_MEMORY", "2GB"),
        "temp_directory": str(spill),
        # Aggregates never need the input order; keeping it costs memory on large inputs.
        "preserve_insertion_order": False,
    }
    if os.environ.get("SHOPMTL_DUCKDB_THREADS"):
        config["threads"] = int(os.environ["SHOPMTL_DUCKDB_THREADS"])
    return duckdb.connect(config=config)


def cleaned(path: str | Path, column_map: Mapping[str, str], recipe: Recipe) -> Cleaned:
    """The cleaned table of ``path``, built on first use and then read from the cache.

    Args:
        path: ``data.path`` (a file, a folder or glob of Parquet files).
        column_map: canonical name -> the file's name (``data.columns``).
        recipe: the layout's columns and cleaning.
    """
    sources = resolve_sources(path)
    names = {c: column_map.get(c, c) for c in recipe.canonical}
    key = json.dumps(
        {
            "files": sources.stamp(),
            "names": names,
            "recipe": [recipe.version, recipe.clean, recipe.products],
            "engine": ENGINE_VERSION,
        },
        sort_keys=True,
    )
    folder = cache_root() / "clean" / hashlib.sha256(key.encode()).hexdigest()[:24]
    table = Cleaned(sources, folder / "rows.parquet", folder / "products.parquet")
    if not _complete(table):
        from filelock import FileLock

        folder.mkdir(parents=True, exist_ok=True)
        # The processes of a multi-process run (and runs side by side) start together: one cleans,
        # the others wait for its table instead of each cleaning the same data at once.
        with FileLock(str(folder / ".build.lock")):
            if not _complete(table):
                _build(table, names, recipe)
    return table


def _complete(table: Cleaned) -> bool:
    return table.rows.is_file() and table.products.is_file()


def _build(table: Cleaned, names: Mapping[str, str], recipe: Recipe) -> None:
    import duckdb

    table.rows.parent.mkdir(parents=True, exist_ok=True)
    con = connect()
    try:
        with _raw_query(con, table, names, recipe) as (raw, explain):
            try:
                con.execute(f"CREATE VIEW raw AS {raw}")
                _write(con, recipe.clean, table.rows, ordered=True)
            except duckdb.Error as error:
                raise ValueError(explain(str(error))) from None
        con.execute(f"CREATE VIEW kept AS SELECT * FROM read_parquet({_literal(table.rows)})")
        _write(con, recipe.products, table.products, ordered=False)
    except duckdb.Error as error:  # a file DuckDB cannot read at all
        raise ValueError(_unreadable(table.sources, str(error))) from None
    finally:
        con.close()


def _unreadable(sources: Sources, message: str) -> str:
    said = (
        csv_input.conversion_error(sources.files[0], message, {}, None)
        if sources.kind == "csv"
        else None
    )
    if said:  # e.g. a CSV that is not UTF-8, found while reading its header
        return said
    reason = message.splitlines()[
        0
    ]  # DuckDB appends the query's text; the first line says what failed
    return (
        f"cannot read transactions {sources.spec!r}: {reason}. Quantity must be whole numbers, "
        f"InvoiceDate dates, UnitPrice numbers; check the column map (data.columns)."
    )


def _write(con: duckdb.DuckDBPyConnection, query: str, target: Path, *, ordered: bool) -> None:
    """``COPY (query) TO`` a temporary sibling of ``target``, then rename it into place."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        # The rows keep the input's order (file by file, line by line), as pandas readers do.
        con.execute(f"SET preserve_insertion_order = {str(ordered).lower()}")
        # DuckDB rewrites an IN list into a hash join when it expects a large input (a CSV), and a join
        # does not keep the input order: keep such lists as filters while writing ordered rows.
        con.execute(f"SET disabled_optimizers = '{'in_clause' if ordered else ''}'")
        con.execute(f"COPY ({query}) TO {_literal(Path(name))} (FORMAT parquet, COMPRESSION zstd)")
        os.replace(name, target)
    finally:
        Path(name).unlink(missing_ok=True)


@contextmanager
def _raw_query(
    con: duckdb.DuckDBPyConnection, table: Cleaned, names: Mapping[str, str], recipe: Recipe
) -> Iterator[tuple[str, Callable[[str], str]]]:
    """``SELECT`` of the canonical columns, typed, from the source files (columns checked first),
    and how to explain a DuckDB error raised while reading them (naming the file, line and fix)."""
    sources, canonical = table.sources, recipe.canonical
    if sources.kind == "csv":
        with csv_input.readable(sources.files[0], table.rows.parent) as file:
            check_columns(sources, {sources.files[0]: csv_input.columns(con, file)}, names)
            types = {
                names[c]: "VARCHAR" if kind.endswith(" NULL") else kind
                for c, kind in canonical.items()
            }
            fmt = _date_format(
                con, file, [names[c] for c, kind in canonical.items() if kind == "TIMESTAMP"]
            )

            def explain(message: str) -> str:
                said = csv_input.conversion_error(sources.files[0], message, types, fmt)
                return said or _unreadable(sources, message)

            yield _typed(canonical, names, csv_input.table(file, types, fmt)), explain
        return
    check_columns(sources, {path: _parquet_columns(path) for path in sources.files}, names)
    yield (
        _typed(
            canonical, names, f"read_parquet([{', '.join(_literal(p) for p in sources.files)}])"
        ),
        (lambda message: _unreadable(sources, message)),
    )


def _typed(canonical: Mapping[str, str], names: Mapping[str, str], source: str) -> str:
    cast = {
        "VARCHAR": "CAST",
        "BIGINT": "CAST",
        "TIMESTAMP": "CAST",
        "DOUBLE": "CAST",
        "DOUBLE NULL": "TRY_CAST",
    }
    columns = ", ".join(
        f'{cast[kind]}("{names[c]}" AS {kind.split()[0]}) AS "{c}"' for c, kind in canonical.items()
    )
    return f"SELECT {columns} FROM {source}"


def _date_format(con: duckdb.DuckDBPyConnection, file: Path, dates: list[str]) -> str | None:
    """The one format of every date column (DuckDB's reader takes one ``timestampformat``)."""
    formats = {column: csv_input.date_format(con, file, column) for column in dates}
    distinct = {fmt for fmt in formats.values() if fmt is not None}
    if len(distinct) > 1:
        raise ValueError(
            f"{file}: the date columns are written in different formats ({formats}); "
            f"write every date in one format, e.g. 2011-01-31 09:30:00."
        )
    return next(iter(distinct), None)


def _parquet_columns(path: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise ValueError(f"cannot read transactions file {path}: {error}") from None
    return {field.name: str(field.type) for field in schema}


def open_clean(table: Cleaned) -> duckdb.DuckDBPyConnection:
    """A connection with the view ``clean``: the kept lines with their ``product_description``."""
    con = connect()
    con.execute(
        "CREATE VIEW clean AS SELECT r.*, p.product_description "
        f"FROM read_parquet({_literal(table.rows)}) r JOIN read_parquet({_literal(table.products)}) p USING (stock_code)"
    )
    return con


def frame(
    con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None
) -> pd.DataFrame:
    """The result of ``query`` as a pandas frame (small aggregates only)."""
    return con.execute(query, params or []).df()
