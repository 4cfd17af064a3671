"""recommend's classical peer computes its TF-IDF cosines a block of customers at a time: the
values of the whole (histories x descriptions) product, without holding it (issue #11)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from shopmtl.plugins import recommend_peer
from sklearn.feature_extraction.text import TfidfVectorizer


def test_cosines_block_by_block_equal_the_whole_product_bit_for_bit():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    histories = [" ".join(rng.choice(words, size=12)) for _ in range(30)]
    descriptions = [" ".join(rng.choice(words, size=3)) for _ in range(25)]
    frame = pd.DataFrame(
        {
            "history": rng.choice(histories, size=500),
            "description": rng.choice(descriptions, size=500),
        }
    )
    vectorizer = TfidfVectorizer().fit(histories)
    h = vectorizer.transform(frame["history"])
    d = vectorizer.transform(frame["description"])
    expected = np.asarray(h.multiply(d).sum(axis=1)).ravel()  # each row's cosine, on its own
    whole = recommend_peer._cosine(vectorizer, frame)
    np.testing.assert_allclose(whole, expected, rtol=1e-12, atol=1e-12)
    for entries in (
        1,
        25,
        26 * 7,
        10_000,
    ):  # one customer per block, ..., every customer in one block
        np.testing.assert_array_equal(
            recommend_peer._cosine(vectorizer, frame, block_entries=entries), whole
        )
