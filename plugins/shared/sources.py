"""Which files ``data.path`` names, and whether their columns fit: one job, before any row is read.

``data.path`` may be one CSV or Parquet file (as before), a folder of Parquet files (searched
recursively) or a glob of Parquet files (``shop/2024-*.parquet``). Every bad input is caught
here with a message naming the file and the fix: a glob that matches nothing, a folder
without Parquet files, files whose columns differ, a mapped column a file lacks.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
CSV_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class Sources:
    """The files behind one ``data.path``: all Parquet, or a single CSV."""

    spec: str  # data.path as the user wrote it (for messages)
    files: tuple[Path, ...]  # resolved, sorted
    kind: str  # "parquet" or "csv"

    def stamp(self) -> tuple[tuple[str, int, int], ...]:
        """``(path, mtime_ns, size)`` of every file: a cache keyed on it is never stale."""
        stamps = []
        for path in self.files:
            stat = path.stat()
            stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)


def kind_of(path: Path) -> str | None:
    """``parquet``, ``csv`` or ``None`` from the file name."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def resolve_sources(path: str | Path) -> Sources:
    """The files ``path`` names: a file, a folder of Parquet files or a glob of them.

    Raises:
        FileNotFoundError: the file or folder does not exist, or the glob matches nothing.
        ValueError: an unsupported file type, a folder without Parquet files, several CSV
            files (give one, or convert them to Parquet), or CSV mixed with Parquet.
    """
    spec = str(path)
    expanded = Path(spec).expanduser()
    if _GLOB_CHARACTERS & set(spec):
        files = sorted(
            Path(p).resolve() for p in glob.glob(str(expanded), recursive=True) if Path(p).is_file()
        )
        if not files:
            raise FileNotFoundError(
                f"data.path {spec!r}: the pattern matches no file. Check the folder and the pattern "
                f"(e.g. data.path='shop/*.parquet'), or give one file."
            )
    elif expanded.is_dir():
        files = sorted(
            p.resolve() for p in expanded.rglob("*") if p.is_file() and kind_of(p) == "parquet"
        )
        if not files:
            raise ValueError(
                f"data.path {spec!r} is a folder without .parquet files. Put the transactions there as "
                f"Parquet, or set data.path to a CSV or Parquet file."
            )
    elif expanded.is_file():
        files = [expanded.resolve()]
    else:
        raise FileNotFoundError(
            f"transactions file not found: {expanded.resolve()}. Set data.path to a CSV or Parquet file, "
            f"a folder or glob of Parquet files (or leave it unset to use the bundled Online Retail data)."
        )
    return Sources(spec, tuple(files), _common_kind(spec, files))


def _common_kind(spec: str, files: Sequence[Path]) -> str:
    kinds = {path: kind_of(path) for path in files}
    for path, kind in kinds.items():
        if kind is None:
            raise ValueError(
                f"transactions file {path}: unsupported type; use a .csv (optionally compressed) "
                f"or a .parquet file (an Excel sheet can be saved as CSV)."
            )
    if len(set(kinds.values())) > 1:
        raise ValueError(
            f"data.path {spec!r} mixes CSV and Parquet files; convert the CSV files to Parquet."
        )
    kind = next(iter(kinds.values()))
    if kind == "csv" and len(files) > 1:
        raise ValueError(
            f"data.path {spec!r} matches {len(files)} CSV files; give one CSV, or convert them to Parquet "
            f"(a folder or glob of Parquet files is read as one table)."
        )
    return str(kind)


def check_columns(
    sources: Sources, columns_by_file: Mapping[Path, Mapping[str, str]], names: Mapping[str, str]
) -> None:
    """Every file has every mapped column, and all files have the same columns and types.

    Args:
        sources: the resolved files.
        columns_by_file: each file's columns (name -> type), as its reader found them.
        names: canonical column -> the name looked for in the files.

    Raises:
        ValueError: naming the file, the missing or differing columns, and the fix.
    """
    for path in sources.files:
        found = list(columns_by_file[path])
        missing = [canonical for canonical, name in names.items() if name not in found]
        if missing:
            wanted = ", ".join(f"{c} (looked for {names[c]!r})" for c in missing)
            fixes = " ".join(f"data.columns.{c}=<its name in your file>" for c in missing)
            raise ValueError(
                f"{path}: missing column(s) {wanted}. The file has: {', '.join(map(str, found))}. "
                f"Map each to your file's name with {fixes}."
            )
    first = sources.files[0]
    reference = set(columns_by_file[first])
    for path in sources.files[1:]:
        columns = set(columns_by_file[path])
        if columns != reference:
            extra, lacking = sorted(columns - reference), sorted(reference - columns)
            raise ValueError(
                f"data.path {sources.spec!r} mixes schemas: {path} differs from {first} "
                f"(has {extra or 'nothing'} more, lacks {lacking or 'nothing'}). Give every file the same "
                f"columns, or point data.path at the files of one layout."
            )
        for name in names.values():
            theirs, ours = columns_by_file[path][name], columns_by_file[first][name]
            if theirs != ours:
                raise ValueError(
                    f"data.path {sources.spec!r} mixes schemas: column {name!r} is {theirs} in {path} but "
                    f"{ours} in {first}. Write every file with the same column types."
                )
