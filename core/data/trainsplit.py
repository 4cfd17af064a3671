"""A task's train split as its plugin handed it over, read a chunk of rows at a time.

The train split is the large one (recommend's is 10x its val split), and a run reads it
three ways, none of which needs it whole in one frame:

* the feature state (standardisation, vocabularies) reads a few columns of every row the
  network trains on, a chunk at a time;
* each process encodes only its :class:`~shopmtl.core.data.partition.Shard` of those rows,
  chunk by chunk (:meth:`TrainSplit.chunks`); an Arrow or Parquet split (hook API 1.3) is
  scanned, so a process never holds more than one chunk of it;
* what is classical by nature -- a task's prior, its baselines -- gets the rows as one
  frame (:meth:`TrainSplit.frame`), read when it is fitted and dropped after.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from shopmtl.core.data.partition import Shard
from shopmtl.registry.splits import split_chunks, split_frame, split_length

#: Train rows read and encoded at a time.
CHUNK_ROWS = 100_000


def kept_rows(n: int, cap: int | None, seed: int) -> np.ndarray | None:
    """Positions of the ``cap`` rows of ``n`` a cap keeps (random by seed, in their order); ``None``: all."""
    if cap is None or n <= cap:
        return None
    return np.sort(pd.Series(np.arange(n)).sample(n=cap, random_state=seed).to_numpy())


@dataclass(frozen=True)
class TrainSplit:
    """The train split's source and which of its rows the network trains on (``max_train_examples``)."""

    source: Any  # a pandas frame, Arrow, or the path of Parquet rows (registry.splits.SplitSource)
    total: int  # rows in the source
    kept: np.ndarray | None = None  # ascending positions the cap keeps; None: every row

    @classmethod
    def of(cls, source: Any, cap: int | None, seed: int) -> TrainSplit:
        """The split with ``cap`` applied (random rows, by seed)."""
        total = split_length(source)
        return cls(source, total, kept_rows(total, cap, seed))

    def __len__(self) -> int:
        """Rows the network trains on (over all processes)."""
        return self.total if self.kept is None else len(self.kept)

    def positions(self, shard: Shard = Shard()) -> np.ndarray:
        """Source positions of ``shard``'s rows, in the order the process trains on them."""
        rows = shard.rows(len(self))
        return rows if self.kept is None else self.kept[rows]

    def chunks(
        self,
        positions: np.ndarray,
        columns: Sequence[str] | None = None,
        chunk_rows: int | None = None,
    ) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        """``(slots, frame)`` pairs covering ``positions``: the frame holds the rows at
        ``positions[slots]``, read in source order (``positions`` may wrap around);
        ``chunk_rows`` rows at a time (default :data:`CHUNK_ROWS`)."""
        order = np.argsort(positions, kind="stable")
        done = 0
        for frame in split_chunks(self.source, positions[order], chunk_rows or CHUNK_ROWS, columns):
            yield order[done : done + len(frame)], frame
            done += len(frame)

    def frame(self) -> pd.DataFrame:
        """The kept rows (every row without a cap) as one frame."""
        return self.read(self.kept)

    def read(self, positions: np.ndarray | None = None) -> pd.DataFrame:
        """The rows at ``positions`` (ascending) as one frame; ``None``: every row of the source."""
        if positions is None:
            return split_frame(self.source).reset_index(drop=True)
        return pd.concat([f for _, f in self.chunks(positions)]).reset_index(drop=True)
