"""Scorer.score_frame encodes and scores a large frame (recommend's ranking candidates) a chunk at a
time: the predictions, and so every metric read from them, are those of encoding it whole, bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from shopmtl import BuildContext, TaskData
from shopmtl.core.data.features import encode_rows
from shopmtl.core.data.prepare import PreparedTask
from shopmtl.core.engine import evaluate
from shopmtl.core.engine.evaluate import Scorer
from shopmtl.core.engine.predict import load_run
from toy_tasks import ToySettings, binary_metrics, build


@pytest.mark.parametrize("name", ["toy_value", "toy_flag"])  # one text, and a text pair
def test_chunked_scoring_equals_scoring_the_frame_whole(
    name: str, toy_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = load_run(toy_run.output_dir, toy_run.plugins.tasks)
    data = build(BuildContext(settings=ToySettings(rows=600)))
    frame = pd.concat([data["val"], data["test"]], ignore_index=True)  # 400 rows
    task = PreparedTask(
        spec=run.specs[name],
        config=run.config.tasks.get(name),
        data=data,
        state=run.features[name],
        rows={},
    )
    monkeypatch.setattr(evaluate, "_HEAD_CHUNK", 16)
    monkeypatch.setattr(evaluate, "_FRAME_CHUNKS", 3)  # 48 rows encoded at a time
    whole = Scorer(run.accelerator, run.model, run.bank, 8).predict_rows(
        task, encode_rows(task.spec, frame, task.state, run.bank)
    )

    encoded: list[int] = []

    def spy(spec, part, state, bank):
        encoded.append(len(part))
        return encode_rows(spec, part, state, bank)

    monkeypatch.setattr(evaluate, "encode_rows", spy)
    chunked = Scorer(run.accelerator, run.model, run.bank, 8).score_frame(task, frame)
    assert encoded == [48] * 8 + [16]  # never the whole frame
    assert chunked.shape == whole.shape == (400, task.spec.n_predictions)
    assert np.array_equal(chunked, whole)
    if name == "toy_flag":
        batch = evaluate.EvalBatch(
            split="test",
            frame=frame,
            predictions=chunked,
            labels=frame[["flag"]].to_numpy(),
            score=lambda f: None,
            extras={},
            calibration={},
        )
        assert binary_metrics(batch) == binary_metrics(
            dataclasses.replace(batch, predictions=whole)
        )
    empty = Scorer(run.accelerator, run.model, run.bank, 8).score_frame(task, frame.iloc[:0])
    assert empty.shape == (0, task.spec.n_predictions)


def test_a_stream_of_frames_scores_as_their_concatenation(
    toy_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EvalBatch.score_stream (hook API 1.4): frames of any sizes, cut into the chunks one frame gives."""
    run = load_run(toy_run.output_dir, toy_run.plugins.tasks)
    frame = build(BuildContext(settings=ToySettings(rows=600)))["train"].iloc[:300]
    task = PreparedTask(
        spec=run.specs["toy_flag"],
        config=run.config.tasks.get("toy_flag"),
        data=TaskData({}),
        state=run.features["toy_flag"],
        rows={},
    )
    monkeypatch.setattr(evaluate, "_HEAD_CHUNK", 16)
    monkeypatch.setattr(evaluate, "_FRAME_CHUNKS", 3)
    whole = Scorer(run.accelerator, run.model, run.bank, 8).score_frame(task, frame)
    encoded: list[int] = []

    def spy(spec, part, state, bank):
        encoded.append(len(part))
        return encode_rows(spec, part, state, bank)

    monkeypatch.setattr(evaluate, "encode_rows", spy)
    cuts = [0, 5, 5, 70, 71, 200, 300]  # an empty frame, frames smaller and larger than a chunk
    pieces = (frame.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:]))
    streamed = Scorer(run.accelerator, run.model, run.bank, 8).score_frames(task, pieces)
    assert encoded == [48] * 6 + [12]
    assert np.array_equal(streamed, whole)
    assert Scorer(run.accelerator, run.model, run.bank, 8).score_frames(task, iter(())).shape == (
        0,
        1,
    )
