"""The one data check (core/data/checks.py): every row counts, a chunk at a time, every problem at once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import toy_config
from shopmtl import BuildContext, TaskData
from shopmtl.core.data import checks
from shopmtl.core.data.checks import check_splits
from shopmtl.core.data.features import FeatureFit, FeatureState
from shopmtl.core.data.prepare import prepare_task
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.data.trainsplit import kept_rows
from shopmtl.core.model.encoder import load_tokenizer
from shopmtl.registry.splits import file_problems
from toy_tasks import TOY_REGRESSION, build


def _with_rare_shop(ctx: BuildContext) -> TaskData:
    """Toy data where one train row outside a 20-row sample is the only 'zz' shop, with x = 1000."""
    frames = build(ctx).splits
    kept = set(kept_rows(len(frames["train"]), 20, ctx.seed).tolist())
    row = next(r for r in range(len(frames["train"])) if r not in kept)
    frames["train"].loc[row, ["shop", "x"]] = ["zz", 1000.0]
    return TaskData(frames)


def test_the_feature_state_comes_from_every_train_row_when_a_sample_trains(tmp_path):
    config = toy_config(tmp_path / "run", "tasks={toy_value: {max_train_examples: 20}}")
    spec = dataclasses.replace(TOY_REGRESSION, build_dataset=_with_rare_shop)
    bank = TextBank(load_tokenizer(config.encoder.name), config.encoder.max_length)
    task = prepare_task(spec, config, bank)
    every_row = FeatureState.fit(spec, _with_rare_shop(BuildContext(seed=config.seed))["train"])
    assert task.train_rows == 20  # the network trains on the sample ...
    assert "zz" in task.state.vocabularies[0]  # ... the vocabulary knows every row's shop
    assert task.state.numeric_mean == pytest.approx(every_row.numeric_mean)
    assert task.state.numeric_mean[0] > 3  # x = 1000 on one row of 240 moves the mean


def test_the_check_reads_every_row_a_chunk_at_a_time(tmp_path: Path, monkeypatch):
    frames = build(BuildContext()).splits
    folder = tmp_path / "train"
    folder.mkdir()
    for k in range(3):
        frames["train"].iloc[k * 80 : (k + 1) * 80].to_parquet(folder / f"{k}.parquet")
    splits = {**frames, "train": str(folder)}
    seen: list[int] = []
    batches = checks.split_batches

    def counted(*args, **kwargs):
        for frame in batches(*args, **kwargs):
            seen.append(len(frame))
            yield frame

    monkeypatch.setattr(checks, "split_batches", counted)
    found = check_splits(TOY_REGRESSION, splits, chunk_rows=30)
    assert found.problems == [] and found.rows == {"train": 240, "val": 80, "test": 80}
    assert max(seen) <= 30 and sum(seen) == 240 + 80 + 80
    whole = FeatureState.fit(TOY_REGRESSION, frames["train"])
    assert found.state.vocabularies == whole.vocabularies
    assert found.state.numeric_std == pytest.approx(whole.numeric_std, rel=1e-12)


def test_every_problem_is_reported_at_once_with_its_rows():
    frames = build(BuildContext()).splits
    frames["train"].loc[[5, 150], "value"] = np.inf
    frames["train"]["x"] = frames["train"]["x"].astype(object)
    frames["train"].loc[200, "x"] = "n/a"
    frames["val"]["value"] = np.nan
    problems = check_splits(TOY_REGRESSION, frames, chunk_rows=64).problems
    assert any(
        "'value' of the train split is infinite on 2 rows (rows 5, 150)" in p for p in problems
    )
    assert any(
        "'x' of the train split is not a number on 1 row (e.g. 'n/a'), row 200" in p
        for p in problems
    )
    assert any("'value' of the val split is missing (NaN) on every row (80)" in p for p in problems)
    assert len(problems) == 3


def test_feature_fit_merges_chunks_as_one_frame_would():
    frame = build(BuildContext()).splits["train"]
    fit = FeatureFit(TOY_REGRESSION)
    for start in range(0, len(frame), 7):
        fit.add(frame.iloc[start : start + 7])
    whole = FeatureState.fit(TOY_REGRESSION, frame)
    assert fit.state().numeric_mean == pytest.approx(whole.numeric_mean, rel=1e-12)
    assert fit.state().numeric_std == pytest.approx([pd.to_numeric(frame["x"]).std()], rel=1e-12)


@pytest.mark.parametrize("odd", [0, 2])
def test_the_odd_file_is_named_whichever_it_is(tmp_path: Path, odd: int):
    frame = build(BuildContext()).splits["train"]
    for k in range(3):
        part = frame.iloc[k * 80 : (k + 1) * 80]
        part = part.assign(x=part["x"].astype(str)) if k == odd else part
        part.to_parquet(tmp_path / f"part-{k}.parquet")
    problems = file_problems(str(tmp_path), ["x"])
    assert len(problems) == 1 and f"part-{odd}.parquet: column 'x' is" in problems[0]
    assert "other 2 files have double" in problems[0]
