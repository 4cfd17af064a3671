"""A stand-in for accelerate's Accelerator that runs on CPU in float32, without autocast.

:class:`shopmtl.core.engine.evaluate.Scorer` only needs ``device`` and ``autocast()`` from its
accelerator (and ``evaluate`` the process count); exported graphs are float32, so comparing with them (and running them)
needs the model without the run's bf16 autocast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class Fp32Runtime:
    """``device`` = CPU, one process, and an ``autocast()`` that changes nothing."""

    device = torch.device("cpu")
    num_processes = 1  # evaluate() shares rows between processes: here there is one
    process_index = 0

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        yield
