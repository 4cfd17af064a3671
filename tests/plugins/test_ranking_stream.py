"""recommend's ranking candidates drawn once as compact arrays and handed to the scorer block by block
(hook API 1.4, ``EvalBatch.score_stream``): the blocks are the whole ranking frame, and HitRate@10 and
NDCG@10 come out exactly as when the whole frame is scored, on the bundled data."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pytest
from shopmtl import BuildContext, EvalBatch, TaskData
from shopmtl.plugins import recommend, recommend_scoring
from shopmtl.plugins.recommend import RECOMMEND, RecommendSettings, recommend_metrics
from shopmtl.plugins.shared.baselines import baseline_metrics


def fake_score(frame: pd.DataFrame) -> np.ndarray:
    """A row's score from its keys alone, in 50 levels: deterministic, with many ties."""
    keys = pd.util.hash_pandas_object(frame[["customer_id", "stock_code"]], index=False).to_numpy()
    return (keys % 50).astype(float).reshape(-1, 1) / 50


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> TaskData:
    """recommend on the bundled data, its candidates cut in blocks of about 20,000 rows."""
    monkeypatch.setattr(recommend, "_BLOCK_ROWS", 20_000)
    return RECOMMEND.build_dataset(BuildContext(settings=RecommendSettings()))


def batch(
    data: TaskData, split: str, frame: pd.DataFrame, *, stream: bool, seen: list[int] | None = None
) -> EvalBatch:
    def score_stream(frames: Iterable[pd.DataFrame]) -> np.ndarray:
        parts = list(frames)
        if seen is not None:
            seen.extend(len(p) for p in parts)
        return np.concatenate([fake_score(p) for p in parts])

    return EvalBatch(
        split=split,
        frame=frame,
        predictions=fake_score(frame),
        labels=frame[["label"]].to_numpy(float),
        score=fake_score,
        extras=data.extras,
        score_stream=score_stream if stream else None,
    )


def test_the_blocks_are_the_whole_ranking_frame(small_blocks: TaskData) -> None:
    for split in ("val", "test"):
        blocks = list(small_blocks.extras["ranking_blocks"](split))
        assert len(blocks) > 10 and all(20_000 <= len(b) < 20_101 for b in blocks[:-1])
        assert all(
            b["label"].iloc[0] == 1 for b in blocks
        )  # whole queries: each block starts at a positive
        pd.testing.assert_frame_equal(
            pd.concat(blocks, ignore_index=True),
            small_blocks.extras["ranking"][split],
            check_exact=True,
        )


@pytest.mark.parametrize(
    "fraction", [1.0, 0.3]
)  # the whole split, and a subsampled one (max_eval_examples)
def test_streamed_ranking_metrics_equal_the_whole_frames(
    fraction: float, small_blocks: TaskData
) -> None:
    frame = (
        small_blocks["val"].sample(frac=fraction, random_state=0).sort_index()
        if fraction < 1
        else small_blocks["val"]
    )
    seen: list[int] = []
    streamed = recommend_metrics(batch(small_blocks, "val", frame, stream=True, seen=seen))
    assert "built: none" in repr(small_blocks.extras["ranking"])  # the whole frame was never made
    whole = recommend_metrics(batch(small_blocks, "val", frame, stream=False))
    assert streamed == whole
    assert 0 < streamed["hit_rate_at_10"] < 1 and 0 < streamed["ndcg_at_10"] < 1
    assert len(seen) > 10 and max(seen) < 20_101
    if fraction < 1:  # only the sampled positives' queries were scored
        assert sum(seen) < 0.5 * len(small_blocks.extras["ranking"]["val"])


def test_the_baselines_stream_and_score_as_before(small_blocks: TaskData) -> None:
    """The baselines score row by row: block by block gives their whole-frame values."""
    predict = recommend_scoring._fit_one_feature(
        small_blocks["train"], recommend_scoring._popularity
    )
    streamed = baseline_metrics(
        {"popularity": predict}, small_blocks, "test", ["label"], recommend_metrics
    )["popularity"]
    assert "built: none" in repr(small_blocks.extras["ranking"])
    frame = small_blocks["test"]
    whole = dataclasses.replace(
        batch(small_blocks, "test", frame, stream=False),
        predictions=np.asarray(predict(frame), dtype=float).reshape(-1, 1),
        score=lambda extra: np.asarray(predict(extra), dtype=float).reshape(-1, 1),
    )
    assert streamed == recommend_metrics(whole)
    assert not np.isnan(streamed["hit_rate_at_10"])
