"""Which training rows a process owns: one contiguous, equal-sized share per process.

Multi-process training (several processes on one machine, or on several machines) gives
each process only its share of every task's train split; it tokenizes, encodes and
samples from those rows alone, and the gradients are averaged over all processes at each
step, so a step still learns from every share. With one process the share is every row,
in order, so a one-process run is exactly what it was before sharding.

Shares are *contiguous* ranges (plus a wrap-around at the end), so a reader of an on-disk
table can fetch a process's rows as one range of row groups instead of the whole table,
and rows a builder keeps together (one customer's rows) mostly stay on one process. They
are all the same size (``ceil(rows / processes)``; the last share wraps around to the
first rows), so every process's sampler crosses its epochs at the same draws and one
sampler state (``trainer_state.json``) resumes them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Shard:
    """Process ``index`` of ``count``: the share of a table that process reads."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(
                f"shard {self.index} of {self.count}: need 0 <= index < count and count >= 1"
            )

    @property
    def whole(self) -> bool:
        """True when this share is every row (a one-process run)."""
        return self.count == 1

    def size(self, rows: int) -> int:
        """Rows in every share of a table of ``rows`` rows (all shares are this size)."""
        return math.ceil(rows / self.count) if rows else 0

    def rows(self, rows: int) -> np.ndarray:
        """Positions (0-based, ascending except at the wrap-around) of this share's rows in a table of ``rows``."""
        size = self.size(rows)
        return np.arange(self.index * size, (self.index + 1) * size, dtype=np.int64) % max(rows, 1)

    def describe(self) -> str:
        return f"share {self.index + 1} of {self.count}"
