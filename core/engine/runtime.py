"""One place that creates accelerate's Accelerator."""

from __future__ import annotations

from typing import Any

from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState


def fresh_accelerator(**settings: Any) -> Accelerator:
    """An Accelerator with exactly these settings, even if one already exists in this process.

    accelerate keeps one set of settings (mixed precision, accumulation) per process, so
    a notebook or a test that trains in bf16 and then loads an fp32 run would fail with
    "AcceleratorState has already been initialized". The distributed process group is
    kept; only the per-run settings are reset.
    """
    if AcceleratorState._shared_state:
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()
    return Accelerator(**settings)
