"""The price_bin task's dataset against TASKS.md and an independent recomputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builtin_reference import SPLITS, split_of
from shopmtl import EvalBatch, TaskData
from shopmtl.plugins import price_bin

# --- price_bin ------------------------------------------------------------------------------


def test_price_bin_reference_counts(datasets: dict[str, TaskData]) -> None:
    assert [len(datasets["price_bin"][s]) for s in SPLITS] == [3_031, 405, 362]


def test_price_bin_classes_match_an_independent_recount(
    datasets: dict[str, TaskData], clean: pd.DataFrame, names: dict[str, str]
) -> None:
    median = clean.groupby("StockCode")["UnitPrice"].median()
    bins = pd.cut(median, [-np.inf, 1, 2, 4, 8, np.inf], right=False, labels=False)
    split = pd.Series([split_of(code) for code in median.index], index=median.index)
    for s in SPLITS:
        frame = datasets["price_bin"][s]
        expected = bins[split == s]
        assert (
            frame["label"].value_counts().sort_index().to_dict()
            == expected.value_counts().sort_index().astype(int).to_dict()
        )
        assert dict(zip(frame["stock_code"], frame["label"].astype(int))) == expected.to_dict()
        assert frame["description"].tolist() == [names[c] for c in frame["stock_code"]]
    assert price_bin.price_class(np.array([0.99, 1.0, 1.99, 2.0, 4.0, 7.99, 8.0])).tolist() == [
        0,
        1,
        1,
        2,
        3,
        3,
        4,
    ]


def test_price_bin_baselines_reproduce_the_reference(test_baselines: dict[str, dict]) -> None:
    got = test_baselines["price_bin"]
    assert got["majority"]["accuracy"] == pytest.approx(0.293, abs=0.005)
    assert got["majority"]["macro_f1"] == pytest.approx(0.091, abs=0.005)
    assert got["tfidf_logreg"]["accuracy"] == pytest.approx(0.696, abs=0.005)
    assert got["tfidf_logreg"]["macro_f1"] == pytest.approx(0.688, abs=0.005)
    matrix = got["majority"]["confusion_matrix"]
    assert (
        isinstance(matrix, list)
        and len(matrix) == 5
        and all(isinstance(r, list) and len(r) == 5 for r in matrix)
    )
    assert sum(map(sum, matrix)) == 362


def test_price_bin_metrics_and_decode() -> None:
    frame = pd.DataFrame({"label": [0.0, 4.0, np.nan]})
    probabilities = np.array([[0.9, 0.1, 0, 0, 0], [0, 0, 0, 0.4, 0.6], [1, 0, 0, 0, 0]])
    got = price_bin.price_bin_metrics(
        EvalBatch("val", frame, probabilities, frame[["label"]].to_numpy(), lambda f: None)
    )
    assert got["accuracy"] == 1.0
    assert got["confusion_matrix"][0][0] == 1 and got["confusion_matrix"][4][4] == 1
    assert set(got) == set(price_bin.PRICE_BIN.metric_directions)
    assert price_bin.PRICE_BIN.metric_directions["confusion_matrix"] == "info"
    decoded = price_bin.decode_price_bin(probabilities[:2])
    assert decoded["prediction"].tolist() == ["<1", ">=8"]
    assert decoded["confidence"].tolist() == pytest.approx([0.9, 0.6])
