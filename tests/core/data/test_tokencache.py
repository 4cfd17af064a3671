"""The on-disk token cache: the same ids as the tokenizer, a text tokenized once across runs,
another tokenizer or length in another folder, and no half-written or foreign segment trusted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.data.tokencache import TokenCache, TokenCacheError, tokenizer_key
from shopmtl.core.model.encoder import load_tokenizer

TEXTS = ["RED HEART MUG ; GLASS CANDLE", "blue bag", "", "ÉTÉ café ; 12 colour pencils", "blue bag"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("sentence-transformers/all-MiniLM-L6-v2")


def bank(tokenizer, root: Path, max_length: int = 16) -> TextBank:
    return TextBank(tokenizer, max_length, TokenCache.for_tokenizer(tokenizer, max_length, root))


def test_cached_ids_equal_the_tokenizers_and_are_reused(tokenizer, tmp_path: Path) -> None:
    plain = TextBank(tokenizer, 16)
    plain.ids_for(TEXTS)
    first = bank(tokenizer, tmp_path)
    first.ids_for(TEXTS)
    assert (first.cache.hits, first.cache.misses) == (0, 4)
    again = bank(tokenizer, tmp_path)  # a later run: every text from disk, none tokenized
    ids = again.ids_for(TEXTS)
    assert (again.cache.hits, again.cache.misses) == (4, 0)
    assert ids.tolist() == [0, 1, 2, 3, 1]
    for mine, theirs in zip(again._tokens, plain._tokens):
        np.testing.assert_array_equal(mine, theirs)
    again.ids_for(["a new text"])
    assert len(list((tmp_path / "tokens").glob("*/segment-*.arrow"))) == 2


def test_key_follows_the_length_not_the_last_call(tokenizer, tmp_path: Path) -> None:
    before = tokenizer_key(tokenizer, 16)
    tokenizer(
        ["some text"], truncation=True, max_length=5
    )  # leaves truncation state on the fast tokenizer
    assert tokenizer_key(tokenizer, 16) == before
    assert tokenizer_key(tokenizer, 32) != before
    bank(tokenizer, tmp_path, 16).ids_for(TEXTS)
    longer = bank(tokenizer, tmp_path, 32)
    longer.ids_for(TEXTS)
    assert longer.cache.hits == 0  # another length: another folder, never the 16-token ids


def test_half_written_segments_are_ignored(tokenizer, tmp_path: Path) -> None:
    bank(tokenizer, tmp_path).ids_for(TEXTS)
    folder = next((tmp_path / "tokens").iterdir())
    (folder / ".segment-abc.tmp").write_bytes(b"interrupted")  # what a killed run leaves
    assert bank(tokenizer, tmp_path).ids_for(TEXTS[:2]).tolist() == [0, 1]


def test_foreign_or_broken_segments_are_errors_naming_the_file(tokenizer, tmp_path: Path) -> None:
    bank(tokenizer, tmp_path, 16).ids_for(TEXTS)
    bank(tokenizer, tmp_path, 32).ids_for(TEXTS)
    short, long = sorted((tmp_path / "tokens").iterdir(), key=lambda p: p.name)
    segment = next(long.glob("segment-*.arrow"))
    shutil.copy(segment, short / "segment-copied.arrow")  # moved by hand: another tokenizer's ids
    with pytest.raises(
        TokenCacheError, match=r"segment-copied\.arrow belongs to tokenizer key .*Delete"
    ):
        bank(tokenizer, tmp_path, 16 if tokenizer_key(tokenizer, 16) == short.name else 32)
    (short / "segment-copied.arrow").write_bytes(b"not arrow")
    with pytest.raises(TokenCacheError, match=r"segment-copied\.arrow is unreadable.*delete it"):
        TokenCache(short, short.name)
