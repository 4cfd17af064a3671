"""The multi-task model: one shared encoder, one head per task."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from shopmtl.core.model.batching import text_buckets
from shopmtl.core.model.encoder import TextEncoder
from shopmtl.core.model.heads import default_head
from shopmtl.registry.spec import HeadInput, HeadSpec, TaskSpec
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class MultiTaskModel(nn.Module):
    """Encodes a batch's distinct texts once and applies the batch's task head."""

    def __init__(
        self,
        encoder: TextEncoder,
        heads: Mapping[str, nn.Module],
        weighting: nn.Module | None = None,
        sharing: nn.Module | None = None,
        token_tasks: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(dict(heads))
        self.token_tasks = token_tasks  # tasks whose heads read token ids (HeadSpec.vocab_size)
        self.sharing = sharing  # None: hard sharing (every head sees the same pooled vector)
        # The loss weighting lives on the model so that learnable weightings are
        # optimised, synchronised across processes and saved like any other weight.
        self.weighting = weighting
        # With a frozen encoder a text's vector never changes: encode it once, reuse it in
        # every later batch (see cache_frozen_encoder). Text id -> pooled vector.
        self._frozen_cache: dict[int, torch.Tensor] | None = None

    def cache_frozen_encoder(self) -> bool:
        """Start reusing pooled vectors across batches if no encoder weight trains.

        The cached vectors are the encoder's eval-mode outputs (no dropout): with frozen
        weights the encoder is a fixed feature extractor. Returns whether caching is on.
        """
        if any(p.requires_grad for p in self.encoder.parameters()):
            self._frozen_cache = None
            return False
        if self._frozen_cache is None:
            self._frozen_cache = {}
        return True

    def encode_batch(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Pooled vectors of the batch's distinct texts, in position order."""
        buckets = text_buckets(batch)
        if self._frozen_cache is None or "text_ids" not in batch:
            # One encoder call per length bucket: short texts are not padded to the long ones.
            if "text_ids" not in batch:
                return torch.cat([self.encoder(ids, mask) for ids, mask in buckets])
            text_ids, start, vectors = batch["text_ids"].tolist(), 0, []
            for ids, mask in buckets:
                vectors.append(self.encoder(ids, mask, text_ids[start : start + len(ids)]))
                start += len(ids)
            return torch.cat(vectors)
        cache, ids = self._frozen_cache, batch["text_ids"].tolist()
        if any(i not in cache for i in ids):
            was_training = self.encoder.training
            self.encoder.eval()
            with torch.no_grad():
                fresh = torch.cat([self.encoder(i, m) for i, m in buckets])
            self.encoder.train(was_training)
            for text_id, vector in zip(ids, fresh):
                cache.setdefault(text_id, vector)
        return torch.stack([cache[i] for i in ids])

    def forward(self, task: str, batch: Mapping[str, torch.Tensor], loss_fn: LossFn | None = None):
        """Raw outputs ``(B, n_outputs)`` of ``task``'s head for a batch from :func:`make_batch`.

        With ``loss_fn``, returns ``(outputs, task_loss, weighted_loss)`` instead: the
        weighting runs inside ``forward`` so distributed training sees its parameters.
        """
        self.encoder.use_adapter(task)
        pooled = self.encode_batch(batch)
        outputs = self.apply_head(task, pooled, batch)
        if loss_fn is None:
            return outputs
        loss = loss_fn(outputs, batch["labels"])
        return outputs, loss, self.weighting(task, loss) if self.weighting is not None else loss

    def share(self, task: str, pooled: torch.Tensor) -> torch.Tensor:
        """What ``task``'s head reads of pooled texts: the pooled vectors, or its gated experts' mix."""
        return pooled if self.sharing is None else self.sharing(task, pooled)

    def apply_head(
        self,
        task: str,
        pooled: torch.Tensor,
        batch: Mapping[str, torch.Tensor],
        shared: bool = False,
    ) -> torch.Tensor:
        """Run ``task``'s head on already-pooled texts (``batch`` holds positions into ``pooled``).

        ``shared``: ``pooled`` already went through :meth:`share` for this task (scoring
        caches that per distinct text, as the rows that read a text can be many).
        """
        if not shared:
            pooled = self.share(task, pooled)
        pair_pos = batch.get("pair_pos")
        tokens = batch.get("tokens")  # (n_distinct, L) ids, for heads that read them
        features = HeadInput(
            text=pooled[batch["text_pos"]],
            pair=pooled[pair_pos] if pair_pos is not None else None,
            numeric=batch["numeric"],
            numeric_missing=batch["numeric_missing"],
            categorical=batch["categorical"],
            text_tokens=tokens[batch["text_pos"]] if tokens is not None else None,
            pair_tokens=tokens[pair_pos] if tokens is not None and pair_pos is not None else None,
        )
        outputs = self.heads[task](features)
        prior = batch.get(
            "prior"
        )  # a classical prior's raw outputs: the head learns a residual over them
        # In float32: under bf16 autocast the prior's logits would keep ~3 significant digits.
        return outputs if prior is None else outputs.float() + prior.float()


def build_model(
    encoder: TextEncoder,
    tasks: Mapping[str, TaskSpec],
    head_specs: Mapping[str, HeadSpec],
    weighting: nn.Module | None = None,
    sharing: nn.Module | None = None,
) -> MultiTaskModel:
    """Attach each task's head (its own ``build_head``, or the default) to the encoder."""
    heads = {
        name: (spec.build_head or default_head)(head_specs[name]) for name, spec in tasks.items()
    }
    token_tasks = frozenset(name for name in tasks if head_specs[name].vocab_size)
    return MultiTaskModel(encoder, heads, weighting, sharing, token_tasks)
