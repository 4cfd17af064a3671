"""Reuse the frozen lower layers' output of a text across training steps.

With ``encoder.freeze_layers: N`` the embeddings and the lowest N transformer layers never
change, so what they compute for a text is the same at every step. Training still paid
for it on every batch: with MiniLM's 6 layers and N=2, a third of each forward pass. A
:class:`FrozenPrefix` computes that output once per distinct text (eval mode, no
gradients), keeps it, and on later batches feeds it straight to layer N while the frozen
layers are stood in for by stubs, so only the trainable layers run.

What changes against recomputing: the frozen layers no longer apply dropout to the cached
texts (they are evaluated as a fixed feature extractor, as a fully frozen encoder already
is). Padding positions of a cached batch hold zeros instead of the frozen layers' output
for pad tokens; attention masks those keys and pooling skips them, so the real tokens'
vectors do not depend on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

#: Default memory budget of the cache. The default run's ~10k distinct training texts
#: (64-token histories and ~10-token descriptions) need ~0.3 GB at MiniLM's width.
DEFAULT_BUDGET_BYTES = 2 << 30


class _PrefixReady(Exception):
    """Raised by the capture hook to stop the forward pass once layer N-1 has run."""


class _Replay(nn.Module):
    """Stands in for the lowest frozen layer: returns the cached hidden states."""

    def __init__(self, hidden: torch.Tensor, as_tuple: bool) -> None:
        super().__init__()
        self.hidden, self.as_tuple = hidden, as_tuple

    def forward(self, *args, **kwargs):  # noqa: ANN002, ANN003 - any layer signature
        return (self.hidden,) if self.as_tuple else self.hidden


class _Passthrough(nn.Module):
    """Stands in for the other frozen layers: hands on what it was given."""

    def __init__(self, as_tuple: bool) -> None:
        super().__init__()
        self.as_tuple = as_tuple

    def forward(self, hidden, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        return (hidden,) if self.as_tuple else hidden


class FrozenPrefix:
    """Text id -> the frozen layers' output for that text (``(tokens, width)``, unpadded).

    ``layers``: the backbone's transformer layers; ``count``: how many of the lowest are
    frozen. Texts beyond ``budget_bytes`` are still served from the frozen layers (eval
    mode, so every text sees the same function) but not kept.
    """

    def __init__(
        self, layers: nn.ModuleList, count: int, budget_bytes: int = DEFAULT_BUDGET_BYTES
    ) -> None:
        self.layers, self.count, self.budget_bytes = layers, count, budget_bytes
        self.store: dict[int, torch.Tensor] = {}
        self.bytes = 0
        self.as_tuple = False  # whether the layers return (hidden, ...) rather than hidden

    def hidden_states(
        self,
        backbone: nn.Module,
        text_ids: Sequence[int],
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Padded ``(B, L, width)`` prefix outputs for a bucket, computing the missing texts."""
        lengths = attention_mask.sum(dim=1).tolist()
        missing = [row for row, text in enumerate(text_ids) if text not in self.store]
        fresh = (
            self._compute(backbone, input_ids[missing], attention_mask[missing])
            if missing
            else None
        )
        fresh_row = {row: i for i, row in enumerate(missing)}
        rows: list[torch.Tensor] = []
        for row, (text, length) in enumerate(zip(text_ids, lengths)):
            if row not in fresh_row:
                rows.append(self.store[text])
                continue
            vector = fresh[fresh_row[row], :length].clone()
            rows.append(vector)
            if self.bytes + vector.nbytes <= self.budget_bytes:
                self.store[text] = vector
                self.bytes += vector.nbytes
        padded = rows[0].new_zeros((len(rows), input_ids.shape[1], rows[0].shape[-1]))
        for row, vector in enumerate(rows):
            padded[row, : vector.shape[0]] = vector
        return padded

    def _compute(
        self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Run the backbone up to the last frozen layer, in eval mode, and stop there."""
        captured: list[torch.Tensor] = []

        def capture(module, inputs, output):  # noqa: ANN001 - torch hook signature
            self.as_tuple = isinstance(output, tuple)
            captured.append(output[0] if self.as_tuple else output)
            raise _PrefixReady

        was_training = backbone.training
        handle = self.layers[self.count - 1].register_forward_hook(capture)
        try:
            backbone.eval()  # no dropout: every later step must see the same prefix
            with torch.no_grad():
                backbone(input_ids=input_ids, attention_mask=attention_mask)
        except _PrefixReady:
            pass
        finally:
            handle.remove()
            backbone.train(was_training)
        if not captured:
            raise RuntimeError(
                "the frozen layers never ran: the backbone's layer stack is not where expected"
            )
        return captured[0]

    @contextmanager
    def replaying(self, hidden: torch.Tensor) -> Iterator[None]:
        """Within the block, the frozen layers return ``hidden`` instead of computing."""
        originals = [self.layers[i] for i in range(self.count)]
        self.layers[0] = _Replay(hidden, self.as_tuple)
        for i in range(1, self.count):
            self.layers[i] = _Passthrough(self.as_tuple)
        try:
            yield
        finally:
            for i, layer in enumerate(originals):
                self.layers[i] = layer
