"""Every distinct text of a run, tokenized once, padded per batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from shopmtl.core.data.tokencache import TokenCache
from transformers import PreTrainedTokenizerBase


class TextBank:
    """Interns texts: each distinct string gets an id and is tokenized exactly once.

    Tasks share texts (a product description appears in sales, price_bin and
    recommend, week after week), so examples carry text *ids*, and a batch encodes
    each distinct id once.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, max_length: int, cache: TokenCache | None = None
    ) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.cache = (
            cache  # token ids on disk from earlier runs (same tokenizer and length), if any
        )
        self._ids: dict[str, int] = {}
        self._tokens: list[np.ndarray] = []
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.vocab_size = len(tokenizer)  # added tokens included

    def __len__(self) -> int:
        return len(self._tokens)

    def ids_for(self, texts: Sequence[str]) -> np.ndarray:
        """Ids of ``texts``, tokenizing (in one call) only those not seen before."""
        texts = [
            "" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in texts
        ]
        new = list(dict.fromkeys(t for t in texts if t not in self._ids))
        if new:
            for text, tokens in zip(new, self._tokenize(new)):
                self._ids[text] = len(self._tokens)
                self._tokens.append(tokens)
        return np.fromiter((self._ids[t] for t in texts), dtype=np.int64, count=len(texts))

    def _tokenize(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids of ``texts``: from the cache where it has them, the rest in one tokenizer call."""
        found, keys = (
            self.cache.lookup(texts) if self.cache is not None else ([None] * len(texts), [])
        )
        missing = [k for k, f in enumerate(found) if f is None]
        if missing:
            encoded = self.tokenizer(
                [texts[k] for k in missing], truncation=True, max_length=self.max_length
            )
            for k, tokens in zip(missing, encoded["input_ids"]):
                found[k] = np.asarray(tokens, dtype=np.int32)
            if self.cache is not None:
                self.cache.store([keys[k] for k in missing], [found[k] for k in missing])
        return found  # type: ignore[return-value] -- every slot is filled now

    def lengths(self, ids: np.ndarray) -> np.ndarray:
        """Token counts of the given text ids."""
        return np.fromiter((len(self._tokens[i]) for i in ids), dtype=np.int64, count=len(ids))

    def pad(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` for ``ids``, padded to the longest of them."""
        rows = [self._tokens[i] for i in ids]
        width = max((len(r) for r in rows), default=1)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for k, row in enumerate(rows):
            input_ids[k, : len(row)] = row
            mask[k, : len(row)] = 1
        return torch.from_numpy(input_ids), torch.from_numpy(mask)
