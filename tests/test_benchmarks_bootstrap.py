"""benchmarks/paired_bootstrap.py: whole clusters are resampled, and the interval says which model is better."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent / "benchmarks")
)  # the scripts' sibling modules
from paired_bootstrap import cluster_resamples, compare  # noqa: E402
from shopmtl import EvalBatch
from toy_tasks import TOY_BINARY  # noqa: E402


def test_resamples_draw_whole_clusters():
    keys = pd.Series(["a", "a", "b", "c", "c", "c"])
    for rows in cluster_resamples(keys, samples=50, seed=0):
        drawn = keys.iloc[rows]
        for key, count in drawn.value_counts().items():
            assert count % (keys == key).sum() == 0  # a cluster comes whole, once or several times
        assert len(set(drawn)) <= 3


def test_a_better_model_gets_an_interval_above_zero_and_a_worse_one_below():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400).astype(float)
    frame = pd.DataFrame({"text": ["x"] * 400, "other": ["y"] * 400, "row": np.arange(400) // 2})
    spec = dataclasses.replace(TOY_BINARY, keys=("row",))  # rows cluster in pairs
    batch = EvalBatch(
        split="test",
        frame=frame,
        predictions=np.zeros((400, 1)),
        labels=labels[:, None],
        score=lambda f: np.empty(0),
    )
    good = (0.7 * labels + 0.3 * rng.random(400))[:, None]  # ranks almost every positive first
    noisy = (0.2 * labels + 0.8 * rng.random(400))[:, None]
    better = compare("toy_flag", spec, batch, [good, good], noisy, samples=200, seed=0)
    assert (
        better["difference"] > 0 and better["ci95"][0] > 0 and better["share_model_better"] == 1.0
    )
    worse = compare("toy_flag", spec, batch, [noisy], good, samples=200, seed=0)
    assert worse["ci95"][1] < 0 and worse["clusters"] == 200
