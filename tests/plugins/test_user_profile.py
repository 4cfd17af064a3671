"""The user_profile task's dataset against TASKS.md and an independent recomputation."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from builtin_reference import CUTOFF, SPLITS, split_of
from shopmtl import EvalBatch, TaskData
from shopmtl.plugins import user_profile

# --- user_profile ---------------------------------------------------------------------------


def test_user_profile_reference_counts(datasets: dict[str, TaskData]) -> None:
    assert [len(datasets["user_profile"][s]) for s in SPLITS] == [1_552, 211, 184]


def test_user_profile_matches_an_independent_recount(
    datasets: dict[str, TaskData], people: pd.DataFrame, eligible: list[int], names: dict[str, str]
) -> None:
    data = datasets["user_profile"]
    for s in SPLITS:
        assert data[s]["customer_id"].tolist() == [c for c in eligible if split_of(str(c)) == s]

    # Labels: the words of the products each customer bought on/after the cutoff.
    patterns = {w: re.compile(rf"\b{re.escape(w)}\b") for w in user_profile.LABELS}
    words = {
        code: {w for w, p in patterns.items() if p.search(name.upper())}
        for code, name in names.items()
    }
    after = people[people["InvoiceDate"] >= CUTOFF].groupby("CustomerID")["StockCode"].unique()
    frame = pd.concat([data[s] for s in SPLITS]).set_index("customer_id")
    for customer in eligible:
        bought = set().union(*(words[c] for c in after[customer]))
        assert {w for w in user_profile.LABELS if frame.at[customer, w] == 1} == bought

    # History and country of a few customers, by hand.
    before = people[people["InvoiceDate"] < CUTOFF]
    for customer in (eligible[0], eligible[len(eligible) // 2], eligible[-1]):
        mine = before[before["CustomerID"] == customer].assign(
            name=lambda f: f["StockCode"].map(names)
        )
        last = mine.groupby("name")["InvoiceDate"].max()
        order = sorted(last.index, key=lambda n: (-last[n].value, n))
        assert frame.at[customer, "history"] == " ; ".join(order)
        counts = mine["Country"].value_counts()
        assert frame.at[customer, "country"] == min(
            c for c, n in counts.items() if n == counts.max()
        )

        # The derived features: label words counted over the whole history, and its newest 10 items.
        derived = user_profile.history_features(frame.loc[[customer]]).iloc[0]
        assert derived["history_items"] == pytest.approx(np.log1p(len(order)))
        for word, pattern in patterns.items():
            hits = [bool(pattern.search(n.upper())) for n in order]
            assert derived[f"history_share_{word}"] == pytest.approx(sum(hits) / len(order)), word
            assert derived[f"history_count_{word}"] == pytest.approx(np.log1p(sum(hits))), word
            assert derived[f"recent_share_{word}"] == pytest.approx(
                sum(hits[:10]) / min(10, len(order))
            ), word


def test_user_profile_baselines_reproduce_the_reference(test_baselines: dict[str, dict]) -> None:
    got = test_baselines["user_profile"]
    prior, seen = got["train_label_prior"], got["seen_in_history"]
    assert (prior["micro_f1"], prior["macro_f1"], prior["map"]) == pytest.approx(
        (0.461, 0.185, 0.391), abs=0.005
    )
    assert (seen["micro_f1"], seen["macro_f1"], seen["map"]) == pytest.approx(
        (0.654, 0.585, 0.513), abs=0.005
    )
    assert got["tfidf_country_logreg"]["map"] == pytest.approx(0.654, abs=0.005)


def test_user_profile_metrics_skip_missing_cells_and_decode() -> None:
    labels = np.array([[1.0, 0.0], [0.0, np.nan], [1.0, 1.0]])
    predictions = np.array([[0.9, 0.1], [0.2, 0.9], [0.8, 0.7]])
    frame = pd.DataFrame(labels, columns=["A", "B"])
    got = user_profile.user_profile_metrics(
        EvalBatch("val", frame, predictions, labels, lambda f: None)
    )
    assert got == {"micro_f1": 1.0, "macro_f1": 1.0, "map": 1.0}
    decoded = user_profile.decode_user_profile(np.tile([0.9, 0.1] + [0.0] * 18, (1, 1)))
    assert decoded["predicted_labels"].tolist() == ["HEART"]
    assert decoded["p_HEART"].tolist() == [0.9]
