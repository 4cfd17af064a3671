"""The multi-task model: one shared encoder, one head per task."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from shopmtl.core.encoder import TextEncoder
from shopmtl.registry.blocks import default_head
from shopmtl.registry.contract import HeadInput, HeadSpec, TaskSpec


class MultiTaskModel(nn.Module):
    """Encodes a batch's distinct texts once and applies the batch's task head."""

    def __init__(self, encoder: TextEncoder, heads: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(dict(heads))

    def forward(self, task: str, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Raw outputs ``(B, n_outputs)`` of ``task``'s head for a batch from :func:`make_batch`."""
        pooled = self.encoder(batch["input_ids"], batch["attention_mask"])
        return self.apply_head(task, pooled, batch)

    def apply_head(self, task: str, pooled: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Run ``task``'s head on already-pooled texts (``batch`` holds positions into ``pooled``)."""
        pair_pos = batch.get("pair_pos")
        features = HeadInput(
            text=pooled[batch["text_pos"]],
            pair=pooled[pair_pos] if pair_pos is not None else None,
            numeric=batch["numeric"],
            numeric_missing=batch["numeric_missing"],
            categorical=batch["categorical"],
        )
        return self.heads[task](features)


def build_model(
    encoder: TextEncoder, tasks: Mapping[str, TaskSpec], head_specs: Mapping[str, HeadSpec]
) -> MultiTaskModel:
    """Attach each task's head (its own ``build_head``, or the default) to the encoder."""
    heads = {}
    for name, spec in tasks.items():
        build_head = spec.build_head or default_head
        heads[name] = build_head(head_specs[name])
    return MultiTaskModel(encoder, heads)
