"""The default task head: an MLP over the pooled text and the task's features, with wide paths.

A task passes its own ``build_head`` to :class:`~shopmtl.registry.spec.TaskSpec` to replace it.
"""

from __future__ import annotations

import torch
from shopmtl.registry.spec import HeadInput, HeadSpec
from torch import nn


class FeatureHead(nn.Module):
    """An MLP over the pooled text, the optional pair, numeric and categorical features,
    plus linear ("wide") paths to the output.

    With a text pair it uses the sentence-BERT combination ``[u, v, u*v, |u-v|]``,
    so the two texts are encoded independently (each distinct text once) and still
    interact. The wide paths (Cheng et al., 2016, "Wide & Deep") start at zero: one from
    the numeric and categorical features -- sales is largely a weighted mean of its lags
    -- and, when the head gets token ids (``HeadSpec.vocab_size``), a bag of words of
    each text: one weight per token and output, averaged over the text's tokens
    (fastText-style). A pooled sentence vector blurs the words that set a price ("SET
    OF 12", "JUMBO"); the bag keeps them, as the TF-IDF peers do.
    """

    def __init__(self, spec: HeadSpec, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, min(16, max(2, card))) for card in spec.categorical_cardinalities
        )
        n_features = 2 * spec.n_numeric + sum(e.embedding_dim for e in self.embeddings)
        width = spec.hidden_size * (4 if spec.has_pair else 1) + n_features
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(width, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, spec.n_outputs),
        )
        self.wide = nn.Linear(n_features, spec.n_outputs, bias=False) if n_features else None
        if self.wide is not None:
            nn.init.zeros_(self.wide.weight)  # starts as the plain MLP head
        self.text_bag = self.pair_bag = None
        if spec.vocab_size:
            self.text_bag = _zero_bag(spec)
            self.pair_bag = _zero_bag(spec) if spec.has_pair else None

    def forward(self, x: HeadInput) -> torch.Tensor:
        texts = [x.text]
        if x.pair is not None:
            texts += [x.pair, x.text * x.pair, (x.text - x.pair).abs()]
        features = [x.numeric, x.numeric_missing]
        features += [emb(x.categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        features = [f.to(x.text.dtype) for f in features]
        out = self.mlp(torch.cat([*texts, *features], dim=-1))
        if self.wide is not None:
            out = out + self.wide(torch.cat(features, dim=-1))
        if self.text_bag is not None and x.text_tokens is not None:
            out = out + self.text_bag(x.text_tokens).to(out.dtype)
        if self.pair_bag is not None and x.pair_tokens is not None:
            out = out + self.pair_bag(x.pair_tokens).to(out.dtype)
        return out


def wide_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The linear ("wide") parameters of every :class:`FeatureHead` in ``module``.

    They train with their own, higher learning rate (``training.wide_learning_rate``):
    Adam moves each weight by about the learning rate per step, and a linear model over
    thousands of rarely seen tokens needs larger steps than the MLP to matter in a
    run of a few hundred batches per task.
    """
    return [
        p
        for m in module.modules()
        if isinstance(m, FeatureHead)
        for part in (m.wide, m.text_bag, m.pair_bag)
        if part is not None
        for p in part.parameters()
    ]


def _zero_bag(spec: HeadSpec) -> nn.EmbeddingBag:
    """Mean of one weight vector per token (padding left out), starting at zero."""
    bag = nn.EmbeddingBag(
        spec.vocab_size, spec.n_outputs, mode="mean", padding_idx=spec.pad_token_id
    )
    nn.init.zeros_(bag.weight)
    return bag


def default_head(spec: HeadSpec) -> nn.Module:
    """The head used when a task gives no ``build_head``."""
    return FeatureHead(spec)
