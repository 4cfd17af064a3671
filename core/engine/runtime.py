"""Where a model runs: accelerate's Accelerator for training, a plain device for inference.

Training creates one :class:`~accelerate.Accelerator` per run (:func:`fresh_accelerator`).
accelerate keeps one set of settings (mixed precision) per process, so loading a run for
prediction must not create a second one: a notebook that trains in fp32 and then predicts in
bf16 would fail with "AcceleratorState has already been initialized". Inference needs only a
device and autocast, so :class:`InferenceDevice` gives it exactly that, and the process-wide
state is left alone (no private accelerate API is touched).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from accelerate import Accelerator, PartialState

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Runtime(Protocol):
    """What scoring reads of an Accelerator: satisfied by both an Accelerator and an InferenceDevice."""

    device: torch.device
    num_processes: int
    process_index: int

    def autocast(self) -> contextlib.AbstractContextManager[Any]: ...


@dataclass(frozen=True)
class InferenceDevice:
    """One process scoring on ``device`` with autocast ``mixed_precision`` (``no``, ``bf16``, ``fp16``)."""

    device: torch.device
    mixed_precision: str = "no"
    num_processes: int = 1
    process_index: int = 0

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast to the chosen precision on this device (a no-op for ``no``)."""
        dtype = _AUTOCAST_DTYPES.get(self.mixed_precision)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            yield


def inference_device(mixed_precision: str) -> InferenceDevice:
    """The device accelerate would pick for this process (GPU when there is one), for inference."""
    return InferenceDevice(PartialState().device, mixed_precision)


def fresh_accelerator(**settings: Any) -> Accelerator:
    """An Accelerator with exactly these settings: a training run's one per process.

    A second run in the same process with another precision is refused by accelerate; that
    error is turned into one line that says what to do.
    """
    try:
        return Accelerator(**settings)
    except ValueError as error:
        if "already been initialized" not in str(error):
            raise
        raise RuntimeError(
            "this process already trained at another mixed precision (accelerate keeps one per "
            "process): start a new process for a run with "
            f"mixed_precision={settings.get('mixed_precision')!r}"
        ) from None
