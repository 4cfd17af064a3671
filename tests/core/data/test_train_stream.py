"""The train split is read a chunk at a time: a process reads and encodes only its share, into
memory-mapped arrays, and never holds a Parquet train split whole (issue #11)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import toy_config
from shopmtl import BuildContext, TaskData
from shopmtl.core.config import TaskConfig
from shopmtl.core.data import trainsplit
from shopmtl.core.data.features import EncodedRows
from shopmtl.core.data.partition import Shard
from shopmtl.core.data.prepare import TaskDataError, prepare_task
from shopmtl.core.data.rowstore import RowStore
from shopmtl.core.data.scratch import remove_abandoned
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.model.encoder import load_tokenizer
from toy_tasks import TOY_REGRESSION, build

FIELDS = [f.name for f in dataclasses.fields(EncodedRows)]


def parquet_train(folder: Path, *, bad_row: int | None = None):
    """The toy regression task with its train split handed over as a folder of Parquet files."""

    def build_on_disk(ctx: BuildContext) -> TaskData:
        splits = dict(build(ctx).splits)
        train = splits["train"].reset_index(drop=True)
        if bad_row is not None:
            train["x"] = [
                None if pd.isna(v) else str(v) for v in train["x"]
            ]  # numbers as text: they convert
            train.loc[bad_row, "x"] = "twelve"
        folder.mkdir(parents=True, exist_ok=True)
        for k, start in enumerate(range(0, len(train), 100)):
            train.iloc[start : start + 100].to_parquet(
                folder / f"part-{k}.parquet", index=False, row_group_size=30
            )
        return TaskData({**splits, "train": str(folder)})

    return dataclasses.replace(TOY_REGRESSION, build_dataset=build_on_disk)


def assert_rows_equal(
    left: EncodedRows, right: EncodedRows, left_bank: TextBank, right_bank: TextBank
) -> None:
    for name in FIELDS:
        a, b = getattr(left, name), getattr(right, name)
        if (
            name in ("text_ids", "pair_ids") and a is not None
        ):  # ids are per bank: compare the texts' tokens
            a, b = left_bank.pad(a)[0].numpy(), right_bank.pad(b)[0].numpy()
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.fixture()
def tokenizer(tmp_path):
    return load_tokenizer(toy_config(tmp_path / "run").encoder.name)


def test_a_parquet_train_split_is_read_in_chunks_and_never_whole(tmp_path, tokenizer, monkeypatch):
    config = toy_config(tmp_path / "run")
    whole_bank = TextBank(tokenizer, config.encoder.max_length)
    in_memory = prepare_task(TOY_REGRESSION, config, whole_bank)
    chunks: list[int] = []
    read = trainsplit.split_chunks

    def counted(*args, **kwargs):
        for frame in read(*args, **kwargs):
            chunks.append(len(frame))
            yield frame

    monkeypatch.setattr(trainsplit, "split_chunks", counted)
    monkeypatch.setattr(trainsplit, "CHUNK_ROWS", 50)
    monkeypatch.setattr(
        trainsplit.TrainSplit,
        "frame",
        lambda *a, **k: pytest.fail("the train split was read whole"),
    )
    spec = parquet_train(tmp_path / "train")
    for index in range(3):
        bank = TextBank(tokenizer, config.encoder.max_length)
        scratch = tmp_path / f"scratch-{index}"
        task = prepare_task(spec, config, bank, shard=Shard(index, 3), scratch=scratch)
        mine = Shard(index, 3).rows(240)
        # Fitted a file at a time, merged: the same statistics up to float64 rounding.
        assert task.state.vocabularies == in_memory.state.vocabularies
        assert task.state.numeric_mean == pytest.approx(in_memory.state.numeric_mean, rel=1e-12)
        assert task.state.numeric_std == pytest.approx(in_memory.state.numeric_std, rel=1e-12)
        assert task.train_rows == 240 and len(task.rows["train"]) == 80
        assert_rows_equal(task.rows["train"], in_memory.rows["train"].take(mine), bank, whole_bank)
        assert isinstance(
            task.rows["train"].text_ids, np.memmap
        )  # on disk, read through the page cache
        assert sorted(p.name for p in scratch.iterdir()) == sorted(
            f"{n}.npy" for n in FIELDS if n != "pair_ids" and n != "prior"
        )
    assert chunks and max(chunks) <= 50


def test_a_capped_parquet_train_split_keeps_the_rows_a_frame_keeps(tmp_path, tokenizer):
    config = toy_config(tmp_path / "run")
    config.tasks["toy_value"] = TaskConfig(max_train_examples=100, max_eval_examples=30)
    frame_bank, disk_bank = (TextBank(tokenizer, config.encoder.max_length) for _ in range(2))
    in_memory = prepare_task(TOY_REGRESSION, config, frame_bank, shard=Shard(1, 2))
    on_disk = prepare_task(parquet_train(tmp_path / "train"), config, disk_bank, shard=Shard(1, 2))
    assert on_disk.train_rows == in_memory.train_rows == 100 and len(on_disk.rows["train"]) == 50
    for split in ("train", "val", "test"):
        assert_rows_equal(on_disk.rows[split], in_memory.rows[split], disk_bank, frame_bank)
    pd.testing.assert_frame_equal(
        on_disk.with_train_frame()["train"],
        in_memory.with_train_frame()["train"],
        check_dtype=False,
    )  # what baselines read: the 100 kept rows


def test_a_bad_value_in_another_process_share_stops_every_process_naming_its_row(
    tmp_path, tokenizer
):
    config = toy_config(tmp_path / "run")
    spec = parquet_train(tmp_path / "train", bad_row=230)  # in the third share of three
    with pytest.raises(TaskDataError) as info:
        prepare_task(
            spec, config, TextBank(tokenizer, config.encoder.max_length), shard=Shard(0, 3)
        )
    message = str(info.value)
    assert (
        "numeric column 'x' of the train split" in message
        and "row 230" in message
        and "twelve" in message
    )


def test_row_store_fills_slots_in_any_order_on_disk_and_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    whole = EncodedRows(
        np.arange(10),
        None,
        rng.normal(size=(10, 2)).astype(np.float32),
        np.zeros((10, 2), np.float32),
        np.ones((10, 1), np.int64),
        rng.normal(size=(10, 1)).astype(np.float32),
    )
    order = rng.permutation(10)
    for folder in (None, tmp_path / "rows"):
        store = RowStore(10, folder)
        for part in np.array_split(order, 3):
            store.put(part, whole.take(part))
        rows = store.rows()
        for name in FIELDS:
            if getattr(whole, name) is not None:
                np.testing.assert_array_equal(getattr(rows, name), getattr(whole, name))
        assert rows.pair_ids is None and rows.prior is None
    half = RowStore(10)
    half.put(order[:4], whole.take(order[:4]))
    with pytest.raises(ValueError, match="4 of 10 rows filled"):
        half.rows()


def test_scratch_of_a_process_that_no_longer_runs_is_removed(tmp_path):
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead, alive = int(ended.stdout), os.getpid()
    for pid in (dead, alive):
        (tmp_path / f"box-{pid}-abc").mkdir()
    (
        tmp_path / f"otherbox-{dead}-abc"
    ).mkdir()  # another host's: its processes are not visible here
    remove_abandoned(tmp_path, "box")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"box-{alive}-abc",
        f"otherbox-{dead}-abc",
    ]


def test_a_run_draws_its_batches_from_memory_mapped_rows_and_removes_them_at_the_end(
    tmp_path, monkeypatch
):
    from conftest import toy_plugin_set
    from shopmtl.core.engine import trainer
    from shopmtl.core.engine import training_run as setup

    made, drawn_from = [], []
    real_folder, real_batch = setup.scratch_folder, trainer.make_batch

    def recorded_folder():
        folder = real_folder()
        made.append(Path(folder.name))
        return folder

    def recorded_batch(rows, *args, **kwargs):
        drawn_from.append(type(rows.text_ids))
        return real_batch(rows, *args, **kwargs)

    monkeypatch.setattr(setup, "scratch_folder", recorded_folder)
    monkeypatch.setattr(trainer, "make_batch", recorded_batch)
    config = toy_config(tmp_path / "run", "training.max_steps=3", "training.eval_every=3")
    trainer.train(config, toy_plugin_set(), progress=False)
    assert len(made) == 1 and made[0].parent.name == "scratch"
    assert not made[0].exists()  # removed with the run's end
    assert drawn_from and set(drawn_from) == {np.memmap}
