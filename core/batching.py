"""Batches: each distinct text encoded once, padded to the longest text in the batch."""

from __future__ import annotations

import numpy as np
import torch

from shopmtl.core.features import EncodedRows
from shopmtl.core.textbank import TextBank


def make_batch(rows: EncodedRows, index: np.ndarray, bank: TextBank) -> dict[str, torch.Tensor]:
    """Tensors for rows ``index``.

    The texts of the batch (and their pairs) are deduplicated: ``input_ids`` holds one
    row per distinct text, and ``text_pos``/``pair_pos`` say which row each example
    uses. A sales batch that repeats a product's description, or a recommend batch
    that repeats a customer's history, encodes it once.
    """
    text_ids = rows.text_ids[index]
    pair_ids = rows.pair_ids[index] if rows.pair_ids is not None else None
    all_ids = text_ids if pair_ids is None else np.concatenate([text_ids, pair_ids])
    unique, inverse = np.unique(all_ids, return_inverse=True)
    input_ids, attention_mask = bank.pad(unique)
    inverse = torch.from_numpy(inverse.astype(np.int64))
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "text_pos": inverse[: len(index)],
        "numeric": torch.from_numpy(rows.numeric[index]),
        "numeric_missing": torch.from_numpy(rows.numeric_missing[index]),
        "categorical": torch.from_numpy(rows.categorical[index]),
        "labels": torch.from_numpy(rows.labels[index]),
    }
    if pair_ids is not None:
        batch["pair_pos"] = inverse[len(index) :]
    return batch


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move every tensor of a batch to ``device``."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}
