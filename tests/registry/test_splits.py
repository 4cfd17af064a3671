"""Hook API 1.3: a task may hand over its splits as Arrow tables or datasets, or as Parquet on
disk; shopmtl checks their columns on the schema, reads them as pandas, and trains on them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
import toy_tasks
from shopmtl import HOOK_API_VERSION, BuildContext, TaskData, hookimpl
from shopmtl.core.config import Config
from shopmtl.core.data.prepare import build_task_data
from shopmtl.registry.splits import split_columns, split_frame
from shopmtl.testing import check_task, train_briefly

SPLITS = ("train", "val", "test")


def on_disk(folder: Path, *, drop: str | None = None):
    """The toy regression task with each split written to Parquet by its builder: train as a
    folder of two files, val as one file, test as a pyarrow dataset."""

    def build(ctx: BuildContext) -> TaskData:
        frames = toy_tasks.build(ctx).splits
        folder.mkdir(parents=True, exist_ok=True)
        train = folder / "train"
        train.mkdir(exist_ok=True)
        half = len(frames["train"]) // 2
        for k, part in enumerate((frames["train"].iloc[:half], frames["train"].iloc[half:])):
            part.drop(columns=[drop] if drop else []).to_parquet(
                train / f"part-{k}.parquet", index=False
            )
        frames["val"].to_parquet(folder / "val.parquet", index=False)
        test = pads.dataset(pa.Table.from_pandas(frames["test"], preserve_index=False))
        return TaskData({"train": str(train), "val": folder / "val.parquet", "test": test})

    return dataclasses.replace(toy_tasks.TOY_REGRESSION, build_dataset=build)


def test_the_hook_api_minor_version_says_so() -> None:
    assert tuple(map(int, HOOK_API_VERSION.split("."))) >= (1, 3)  # 1.3 added these split kinds


def test_each_kind_reads_back_as_the_frame(tmp_path: Path) -> None:
    frames = toy_tasks.build(BuildContext()).splits
    spec = on_disk(tmp_path / "rows")
    data = build_task_data(spec, Config())
    for split in SPLITS:
        assert isinstance(data.splits[split], pd.DataFrame)
        pd.testing.assert_frame_equal(
            data[split], frames[split].reset_index(drop=True), check_dtype=False
        )
    assert split_columns(str(tmp_path / "rows" / "train")) == list(frames["train"].columns)
    assert list(split_frame(tmp_path / "rows" / "val.parquet", ["text", "x"]).columns) == [
        "text",
        "x",
    ]


def test_a_parquet_split_missing_a_column_is_named_before_reading(tmp_path: Path) -> None:
    spec = on_disk(tmp_path / "rows", drop="shop")
    with pytest.raises(ValueError) as info:
        build_task_data(spec, Config())
    message = str(info.value)
    said = f"the train split ({tmp_path / 'rows' / 'train'}) lacks column(s) 'shop'"
    assert said in message
    assert any(said in p for p in check_task(spec))  # plugins check: the same words


def test_what_is_not_a_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="hand over a pandas DataFrame, a pyarrow Table"):
        split_frame(42)
    with pytest.raises(ValueError, match="cannot read split .*nowhere"):
        split_frame(tmp_path / "nowhere")
    spec = dataclasses.replace(
        toy_tasks.TOY_REGRESSION,
        build_dataset=lambda ctx: TaskData(
            {
                "train": [1, 2],
                "val": toy_tasks.build(ctx)["val"],
                "test": toy_tasks.build(ctx)["test"],
            }
        ),
    )
    problems = check_task(spec)
    assert any("the train split is" in p for p in problems)


def test_a_task_on_parquet_splits_checks_and_trains(tmp_path: Path) -> None:
    spec = on_disk(tmp_path / "rows")
    assert check_task(spec) == []

    class OnDisk:
        @hookimpl
        def register_tasks(self, register):
            register(spec)

    result = train_briefly(OnDisk(), steps=2, tmp_path=tmp_path / "run")
    assert set(result.metrics["toy_value"]) >= {"val", "test"}
    assert result.metrics["toy_value"]["test"]["rmse"] > 0


def parquet_folder(frame: pd.DataFrame, folder: Path) -> Path:
    """``frame`` as three Parquet files of 25-row groups: several files, several record batches."""
    folder.mkdir()
    for k in range(3):
        frame.iloc[k * 80 : (k + 1) * 80].to_parquet(
            folder / f"part-{k}.parquet", index=False, row_group_size=25
        )
    return folder


@pytest.mark.parametrize("chunk_rows", [1, 7, 25, 1000])
def test_split_chunks_hand_out_the_asked_rows_a_chunk_at_a_time(
    tmp_path: Path, chunk_rows: int
) -> None:
    """The seam a training process reads its rows through: rows at any ascending positions,
    across files and record batches, each chunk indexed by the rows' positions in the split."""
    from shopmtl.registry.splits import split_chunks, split_length

    frame = toy_tasks.build(BuildContext()).splits["train"].reset_index(drop=True)
    folder = parquet_folder(frame, tmp_path / "train")
    positions = np.sort(np.random.default_rng(0).choice(len(frame), size=70, replace=False))
    for source in (frame, folder):
        assert split_length(source) == len(frame)
        chunks = list(split_chunks(source, positions, chunk_rows, ["row_id", "text"]))
        assert all(len(c) <= chunk_rows for c in chunks) and all(
            len(c) == chunk_rows for c in chunks[:-1]
        )
        together = pd.concat(chunks)
        assert together.index.tolist() == positions.tolist()
        pd.testing.assert_frame_equal(
            together, frame.loc[positions, ["row_id", "text"]], check_dtype=False
        )


def test_split_chunks_refuse_positions_out_of_order_or_past_the_end(tmp_path: Path) -> None:
    from shopmtl.registry.splits import split_chunks

    frame = toy_tasks.build(BuildContext()).splits["train"].reset_index(drop=True)
    folder = parquet_folder(frame, tmp_path / "train")
    with pytest.raises(ValueError, match="ascending"):
        list(split_chunks(folder, np.array([3, 1]), 10))
    with pytest.raises(
        ValueError, match=f"has {len(frame)} rows; row {len(frame) + 5} was asked for"
    ):
        list(split_chunks(folder, np.array([0, len(frame) + 5]), 10))


@pytest.mark.parametrize("world_size", [1, 2, 3, 7])
def test_the_deprecated_shard_frame_still_covers_every_row_once_in_order(
    tmp_path: Path, world_size: int
) -> None:
    from shopmtl.registry.splits import shard_frame

    frame = toy_tasks.build(BuildContext()).splits["train"].reset_index(drop=True)
    folder = parquet_folder(frame, tmp_path / "train")
    for source in (frame, folder):
        with pytest.warns(DeprecationWarning, match="split_chunks"):
            shards = [
                shard_frame(source, rank, world_size, ["row_id", "text"])
                for rank in range(world_size)
            ]
        together = pd.concat(shards)
        pd.testing.assert_frame_equal(
            together.reset_index(drop=True), frame[["row_id", "text"]], check_dtype=False
        )
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    with (
        pytest.raises(ValueError, match="0 <= rank < world_size"),
        pytest.warns(DeprecationWarning),
    ):
        shard_frame(frame, 2, 2)


@pytest.mark.parametrize("fault", ["missing", "retyped"])
def test_a_split_file_unlike_the_others_is_named_before_reading(tmp_path: Path, fault: str) -> None:
    """One file of a train folder lacks a column (it would read as nulls) or holds another type (the
    scan would fail half-way): the file is named, with the fix, before a row is read."""
    frames = toy_tasks.build(BuildContext()).splits
    folder = parquet_folder(frames["train"].reset_index(drop=True), tmp_path / "train")
    odd = pd.read_parquet(folder / "part-1.parquet")
    odd = odd.drop(columns=["x"]) if fault == "missing" else odd.assign(shop=np.arange(len(odd)))
    odd.to_parquet(folder / "part-1.parquet", index=False)

    def build(ctx: BuildContext) -> TaskData:
        return TaskData({**toy_tasks.build(ctx).splits, "train": str(folder)})

    spec = dataclasses.replace(toy_tasks.TOY_REGRESSION, build_dataset=build)
    with pytest.raises(ValueError) as info:
        build_task_data(spec, Config())
    message = str(info.value)
    assert "part-1.parquet" in message and "part-0.parquet" not in message
    if fault == "missing":
        assert "lacks column(s) ['x']" in message and "same columns" in message
    else:
        assert "column 'shop' is int64" in message and "one type in every file" in message
