"""Batching: each distinct text encoded once, length buckets, truncation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SMOKE_CONFIG
from shopmtl.core.config import load_config
from shopmtl.core.data.features import FeatureState, encode_rows
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.model.batching import bucket_split, make_batch, text_buckets
from shopmtl.core.model.encoder import build_encoder, load_tokenizer
from toy_tasks import TOY_BINARY, TOY_REGRESSION

# ----------------------------------------------------------------------------- batching


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(load_config(SMOKE_CONFIG).encoder.name)


def _pair_frame(texts, others):
    n = len(texts)
    return pd.DataFrame(
        {
            "row_id": range(n),
            "text": texts,
            "other": others,
            "x": [0.0] * n,
            "shop": ["uk"] * n,
            "value": [1.0] * n,
            "flag": [1.0] * n,
        }
    )


def _bucket_rows(batch):
    """The batch's distinct texts as token lists, in position order across its buckets."""
    return [
        ids[mask.bool()].tolist()
        for ids_b, mask_b in text_buckets(batch)
        for ids, mask in zip(ids_b, mask_b)
    ]


def test_make_batch_encodes_each_distinct_text_once(tokenizer):
    bank = TextBank(tokenizer, max_length=48)
    texts = ["red mug", "red mug", "blue bag", "red mug", "green heart card", "blue bag"]
    others = ["mug", "bag", "mug", "red mug", "mug", "glass"]
    frame = _pair_frame(texts, others)
    rows = encode_rows(TOY_BINARY, frame, FeatureState.fit(TOY_BINARY, frame), bank)
    assert len(bank) == len(set(texts) | set(others))  # the bank interns each string once

    index = np.array([0, 1, 3, 5, 2])
    batch = make_batch(rows, index, bank)
    distinct = {texts[i] for i in index} | {others[i] for i in index}
    assert "input_ids_1" not in batch  # similar lengths: one bucket
    assert batch["input_ids"].shape[0] == len(distinct) < 2 * len(index)
    assert batch["text_pos"].shape == batch["pair_pos"].shape == (len(index),)
    assert batch["labels"].shape == (len(index), 1)

    decoded = _bucket_rows(batch)
    for k, i in enumerate(index):
        assert decoded[batch["text_pos"][k]] == tokenizer(texts[i])["input_ids"]
        assert decoded[batch["pair_pos"][k]] == tokenizer(others[i])["input_ids"]

    # Padding is dynamic: the width is the longest text of this batch, not max_length.
    longest = max(len(tokenizer(t)["input_ids"]) for t in distinct)
    assert batch["input_ids"].shape[1] == batch["attention_mask"].shape[1] == longest < 48
    assert batch["attention_mask"].sum(dim=1).max() == longest
    assert torch.all(batch["input_ids"][batch["attention_mask"] == 0] == bank.pad_id)

    narrow = make_batch(rows, np.array([0, 1]), bank)  # "red mug" / "mug", "bag"
    assert narrow["input_ids"].shape == (
        3,
        max(len(tokenizer(t)["input_ids"]) for t in ("red mug", "mug", "bag")),
    )


def test_make_batch_pads_long_and_short_texts_in_separate_buckets(tokenizer):
    # A recommend-like batch: long histories paired with short product names.
    bank = TextBank(tokenizer, max_length=64)
    histories = [
        "red mug ; blue bag ; green heart card ; glass candle holder ; paper cake case " * 3,
        "white hanging heart t-light holder ; wall clock ; rose necklace " * 3,
    ]
    texts = [histories[i % 2] for i in range(6)]
    others = ["mug", "bag", "red mug", "heart card", "glass", "candle"]
    frame = _pair_frame(texts, others)
    rows = encode_rows(TOY_BINARY, frame, FeatureState.fit(TOY_BINARY, frame), bank)
    batch = make_batch(rows, np.arange(6), bank)

    short, long = text_buckets(batch)
    assert short[0].shape[0] == len(set(others)) and long[0].shape[0] == 2
    widest = max(len(tokenizer(t, truncation=True, max_length=64)["input_ids"]) for t in histories)
    assert (
        short[0].shape[1]
        == max(len(tokenizer(t)["input_ids"]) for t in others)
        < long[0].shape[1]
        == widest
    )
    decoded = _bucket_rows(batch)
    for k in range(6):
        assert (
            decoded[batch["text_pos"][k]]
            == tokenizer(texts[k], truncation=True, max_length=64)["input_ids"]
        )
        assert decoded[batch["pair_pos"][k]] == tokenizer(others[k])["input_ids"]

    # With tokens=True, every distinct text's ids in position order, for heads that read tokens.
    tokens = make_batch(rows, np.arange(6), bank, tokens=True)["tokens"]
    assert [row[row != bank.pad_id].tolist() for row in tokens] == decoded

    # The split is only made where it saves padding (at least MIN_BUCKET_SAVING of the tokens).
    assert bucket_split(np.array([5, 6, 7, 8])) == 0
    assert bucket_split(np.array([3, 4, 4, 60, 64])) == 3
    assert bucket_split(np.array([7])) == 0

    # Encoding the buckets separately gives the pooled vectors of one tensor padded to the longest.
    encoder = build_encoder(load_config(SMOKE_CONFIG).encoder).eval()
    flat_ids = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(r) for r in decoded], batch_first=True, padding_value=bank.pad_id
    )
    flat_mask = torch.nn.utils.rnn.pad_sequence(
        [torch.ones(len(r), dtype=torch.long) for r in decoded], batch_first=True
    )
    with torch.no_grad():
        separate = torch.cat([encoder(ids, mask) for ids, mask in text_buckets(batch)])
        together = encoder(flat_ids, flat_mask)
    torch.testing.assert_close(separate, together, atol=1e-5, rtol=1e-4)


def test_make_batch_truncates_to_max_length_and_omits_missing_pair(tokenizer):
    bank = TextBank(tokenizer, max_length=12)
    frame = _pair_frame(["mug " * 40, "bag", "bag"], ["a", "b", "c"])
    rows = encode_rows(TOY_REGRESSION, frame, FeatureState.fit(TOY_REGRESSION, frame), bank)
    batch = make_batch(rows, np.array([1, 2]), bank)
    assert "pair_pos" not in batch  # toy_value has no text pair
    assert batch["input_ids"].shape[0] == 1 and batch["text_pos"].tolist() == [0, 0]
    assert batch["numeric"].shape == batch["numeric_missing"].shape == (2, 1)
    assert batch["categorical"].shape == (2, 1)
    long_batch = make_batch(rows, np.array([0, 1]), bank)
    assert [ids.shape for ids, _ in text_buckets(long_batch)] == [
        (1, 3),
        (1, 12),
    ]  # capped at max_length
