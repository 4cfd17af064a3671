"""Batches: each distinct text encoded once, padded per length bucket."""

from __future__ import annotations

import numpy as np
import torch
from shopmtl.core.data.features import EncodedRows
from shopmtl.core.data.textbank import TextBank

#: Split a batch's texts into a short and a long bucket only when that saves at least
#: this share of the padded tokens: a second encoder call has a fixed cost of its own.
MIN_BUCKET_SAVING = 0.2


def bucket_split(lengths: np.ndarray) -> int:
    """Where to cut ascending token ``lengths`` into two padded buckets (0 = keep one).

    Padding to the longest text is what a batch costs; a recommend batch pairs ~120-token
    histories with ~8-token product descriptions, so one tensor is mostly padding. The
    cut ``k`` minimises ``k * lengths[k-1] + (n-k) * lengths[-1]`` padded tokens.
    """
    n = len(lengths)
    if n < 2:
        return 0
    k = np.arange(1, n)
    cost = k * lengths[:-1] + (n - k) * lengths[-1]
    best = int(np.argmin(cost))
    return best + 1 if cost[best] <= (1 - MIN_BUCKET_SAVING) * n * lengths[-1] else 0


def make_batch(
    rows: EncodedRows, index: np.ndarray, bank: TextBank, tokens: bool = False
) -> dict[str, torch.Tensor]:
    """Tensors for rows ``index``.

    The texts of the batch (and their pairs) are deduplicated: one row per distinct text,
    and ``text_pos``/``pair_pos`` say which row each example uses. A sales batch that
    repeats a product's description, or a recommend batch that repeats a customer's
    history, encodes it once. The distinct texts are ordered by length and, where it
    saves padding (:func:`bucket_split`), cut into two buckets padded separately:
    ``input_ids``/``attention_mask`` hold the short ones, ``input_ids_1``/``attention_mask_1``
    the long ones; positions count through the buckets in order (:func:`text_buckets`).
    With ``tokens``, ``tokens`` holds every distinct text's ids in one padded tensor, in
    position order, for heads that read the tokens themselves (``HeadInput.text_tokens``).
    """
    text_ids = rows.text_ids[index]
    pair_ids = rows.pair_ids[index] if rows.pair_ids is not None else None
    all_ids = text_ids if pair_ids is None else np.concatenate([text_ids, pair_ids])
    unique, inverse = np.unique(all_ids, return_inverse=True)
    lengths = bank.lengths(unique)
    order = np.argsort(lengths, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    unique, lengths, inverse = unique[order], lengths[order], rank[inverse.reshape(-1)]
    cut = bucket_split(lengths)
    input_ids, attention_mask = bank.pad(unique[:cut] if cut else unique)
    inverse = torch.from_numpy(inverse.astype(np.int64))
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "text_ids": torch.from_numpy(unique.astype(np.int64)),  # bank ids, in position order
        "text_pos": inverse[: len(index)],
        "numeric": torch.from_numpy(rows.numeric[index]),
        "numeric_missing": torch.from_numpy(rows.numeric_missing[index]),
        "categorical": torch.from_numpy(rows.categorical[index]),
        "labels": torch.from_numpy(rows.labels[index]),
    }
    if rows.prior is not None:
        batch["prior"] = torch.from_numpy(rows.prior[index])
    if cut:
        batch["input_ids_1"], batch["attention_mask_1"] = bank.pad(unique[cut:])
    if tokens:
        batch["tokens"] = bank.pad(unique)[0]
    if pair_ids is not None:
        batch["pair_pos"] = inverse[len(index) :]
    return batch


def text_buckets(batch: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``(input_ids, attention_mask)`` buckets of a :func:`make_batch` batch, in order."""
    buckets = [(batch["input_ids"], batch["attention_mask"])]
    if "input_ids_1" in batch:
        buckets.append((batch["input_ids_1"], batch["attention_mask_1"]))
    return buckets


def batch_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Padded tokens the encoder processes for a :func:`make_batch` batch (every bucket)."""
    return sum(int(ids.numel()) for ids, _ in text_buckets(batch))


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move every tensor of a batch to ``device``."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}
