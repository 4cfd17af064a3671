"""The run's encoder as one plain transformers model: LoRA adapters merged into its weights."""

from __future__ import annotations

import copy

from shopmtl.core.model.encoder import TextEncoder
from torch import nn


class ExportError(ValueError):
    """A run cannot be exported as asked; the message says why and what to do."""


def merged_backbone(encoder: TextEncoder) -> nn.Module:
    """A copy of ``encoder``'s transformers model with a shared LoRA adapter merged in.

    The copy computes exactly what the run's encoder computes (up to float rounding);
    the run's own model is left untouched. Per-task adapters give one encoder per
    task, which no single transformers folder or graph can hold: refused.
    """
    if encoder.adapters:
        raise ExportError(
            "this run has one LoRA adapter per task (encoder.lora.per_task), so there is no single "
            f"encoder to export ({', '.join(encoder.adapters)}); export a run with one shared adapter"
        )
    backbone = copy.deepcopy(encoder.backbone)
    if hasattr(backbone, "merge_and_unload"):  # a peft model: fold W + BA into W
        backbone = backbone.merge_and_unload()
    return backbone.float().eval()


def merged_encoder(encoder: TextEncoder) -> TextEncoder:
    """``encoder`` with its backbone merged (:func:`merged_backbone`), pooling unchanged."""
    return TextEncoder(merged_backbone(encoder), encoder.pooling).eval()
