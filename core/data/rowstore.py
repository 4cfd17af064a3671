"""Encoded train rows filled a chunk at a time, on disk (memory-mapped) or in memory.

A process encodes its share of a task's train split a chunk at a time
(:mod:`shopmtl.core.data.trainsplit`); :class:`RowStore` puts each chunk's arrays into
their rows' slots. With a ``folder`` the arrays are ``.npy`` files opened memory-mapped:
the sampler reads a batch's rows from the page cache, and the operating system, not the
process's heap, decides how much of a large split stays in memory. Without one they are
ordinary arrays (prediction, tests).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from shopmtl.core.data.features import EncodedRows


class RowStore:
    """Arrays of ``n`` encoded rows, filled slot by slot from chunks (:meth:`put`), read as :class:`EncodedRows`."""

    def __init__(self, n: int, folder: Path | None = None) -> None:
        self.n = n
        self.folder = folder
        self._arrays: dict[str, np.ndarray | None] = {}
        self._filled = 0

    def _allocate(self, name: str, like: np.ndarray) -> np.ndarray:
        shape = (self.n, *like.shape[1:])
        if self.folder is None:
            return np.empty(shape, dtype=like.dtype)
        self.folder.mkdir(parents=True, exist_ok=True)
        return np.lib.format.open_memmap(
            self.folder / f"{name}.npy", mode="w+", dtype=like.dtype, shape=shape
        )

    def put(self, slots: np.ndarray, chunk: EncodedRows) -> None:
        """Write ``chunk``'s rows into rows ``slots`` (one slot per chunk row)."""
        for field in dataclasses.fields(EncodedRows):
            values = getattr(chunk, field.name)
            if field.name not in self._arrays:
                self._arrays[field.name] = (
                    None if values is None else self._allocate(field.name, values)
                )
            target = self._arrays[field.name]
            if (target is None) != (values is None):
                raise ValueError(f"encoded rows: {field.name} is present in some chunks only")
            if target is not None:
                target[slots] = values
        self._filled += len(slots)

    def rows(self) -> EncodedRows:
        """The rows, once every slot is filled (memory-mapped read-only with a folder)."""
        if self._filled != self.n:
            raise ValueError(f"encoded rows: {self._filled:,} of {self.n:,} rows filled")
        if not self._arrays:  # no rows at all: nothing was put
            raise ValueError("encoded rows: no chunk was put")
        arrays = {}
        for name, array in self._arrays.items():
            if isinstance(array, np.memmap):
                array.flush()
                array = np.load(self.folder / f"{name}.npy", mmap_mode="r")  # type: ignore[operator]
            arrays[name] = array
        return EncodedRows(**arrays)
