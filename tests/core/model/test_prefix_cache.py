"""The frozen-prefix cache: the same vectors and gradients as recomputing, less work."""

from __future__ import annotations

import pytest
import torch
from shopmtl.core.config import EncoderConfig
from shopmtl.core.model.encoder import build_encoder


def _encoder(freeze_layers: int, **lora):
    torch.manual_seed(0)
    config = EncoderConfig(
        random_init=True,
        random_init_layers=3,
        random_init_hidden=32,
        freeze_layers=freeze_layers,
        lora=lora or {"enabled": False},
    )
    encoder = build_encoder(config)
    for module in encoder.modules():  # dropout off, so cached and recomputed runs compare exactly
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return encoder.train()


def _batch():
    ids = torch.tensor(
        [[101, 2000, 2001, 102, 0], [101, 3000, 102, 0, 0], [101, 4000, 4001, 4002, 102]]
    )
    return ids, (ids != 0).long(), [7, 8, 9]


def _vectors_and_grads(encoder, text_ids):
    ids, mask, _ = _batch()
    out = encoder(ids, mask, text_ids)
    out.pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}
    encoder.zero_grad(set_to_none=True)
    return out.detach(), grads


def test_cached_prefix_gives_the_same_vectors_and_gradients_as_recomputing():
    plain = _encoder(2)
    cached = _encoder(2)
    assert cached.cache_frozen_prefix(2)
    want, want_grads = _vectors_and_grads(plain, None)
    for _ in range(2):  # first call fills the cache, the second replays it
        got, got_grads = _vectors_and_grads(cached, _batch()[2])
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert want_grads.keys() == got_grads.keys() and want_grads  # layer 2 and up train
        for name in want_grads:
            torch.testing.assert_close(got_grads[name], want_grads[name], rtol=1e-5, atol=1e-6)
    assert set(cached.prefix.store) == {7, 8, 9}
    assert cached.prefix.store[8].shape[0] == 3  # unpadded: the text's own 3 tokens


def test_replay_skips_the_frozen_layers_and_restores_them():
    encoder = _encoder(2)
    encoder.cache_frozen_prefix(2)
    ids, mask, text_ids = _batch()
    encoder(ids, mask, text_ids)  # fills the cache
    layers = list(encoder.prefix.layers)
    calls = []
    hooks = [
        layer.register_forward_hook(lambda *a, i=i: calls.append(i))
        for i, layer in enumerate(layers)
    ]
    encoder(ids, mask, text_ids)
    for hook in hooks:
        hook.remove()
    assert calls == [2]  # only the trainable layer ran
    assert list(encoder.prefix.layers) == layers


def test_no_cache_when_a_lower_layer_trains():
    assert not _encoder(0).cache_frozen_prefix(0)
    lora = _encoder(2, enabled=True, r=4)  # LoRA adapters train inside the "frozen" layers
    assert not lora.cache_frozen_prefix(2)


def test_eval_mode_and_calls_without_text_ids_recompute():
    encoder = _encoder(2)
    encoder.cache_frozen_prefix(2)
    ids, mask, text_ids = _batch()
    encoder.eval()
    encoder(ids, mask, text_ids)
    encoder.train()
    encoder(ids, mask)
    assert encoder.prefix.store == {}


@pytest.mark.parametrize("budget", [0, 10**9])
def test_budget_caps_what_is_kept_not_what_is_served(budget):
    encoder = _encoder(2)
    encoder.cache_frozen_prefix(2)
    encoder.prefix.budget_bytes = budget
    ids, mask, text_ids = _batch()
    first = encoder(ids, mask, text_ids).detach()
    again = encoder(ids, mask, text_ids).detach()
    torch.testing.assert_close(first, again)
    assert (len(encoder.prefix.store) == 3) == (budget > 0)
