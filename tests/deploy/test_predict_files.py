"""``shopmtl predict`` on files of any size: read, predicted and written in chunks, atomically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shopmtl import BuildContext
from shopmtl.core.data.tableio import read_table, write_table
from shopmtl.core.deploy import stream
from shopmtl.core.engine.predict import predict_tasks
from toy_tasks import build

FORMATS = ["csv", "parquet", "jsonl"]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    frame = build(BuildContext(settings=None))["test"].drop(columns=["value", "flag"]).head(60)
    return frame.assign(note=[f"n{i}" for i in range(len(frame))]).reset_index(drop=True)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("kind", FORMATS)
def test_chunked_predictions_equal_the_whole_frame(
    shopmtl, deploy_run_dir, deploy_run, rows, tmp_path, kind
):
    source, target = tmp_path / f"rows.{kind}", tmp_path / f"scored.{kind}"
    write_table(rows, source)
    result = shopmtl(
        "predict",
        deploy_run_dir,
        "--task",
        "toy_value",
        "--task",
        "toy_flag",
        "--input",
        source,
        "--output",
        target,
        "--chunk-rows",
        7,
    )
    assert result.exit_code == 0, result.output
    assert "wrote 60 rows" in result.output
    out = read_table(target)
    expected = predict_tasks(deploy_run, ["toy_value", "toy_flag"], rows)
    assert list(out.columns) == list(expected.columns) and len(out) == len(rows)
    assert out["note"].tolist() == rows["note"].tolist()
    for column in ("toy_value.prediction", "toy_flag.probability"):
        np.testing.assert_allclose(out[column], expected[column], rtol=1e-5, atol=1e-6)
    assert leftovers(tmp_path) == []


def test_csv_blocks_with_a_column_empty_at_first(monkeypatch, tmp_path):
    """pyarrow infers types from the first block: a column empty there is read as text, not refused later."""
    monkeypatch.setattr(stream, "_CSV_BLOCK_BYTES", 64)
    source = tmp_path / "rows.csv"
    frame = pd.DataFrame(
        {"text": [f"item {i}" for i in range(40)], "shop": [None] * 30 + ["uk"] * 10}
    )
    frame.to_csv(source, index=False)
    chunks = list(stream.read_chunks(source, rows=16))
    assert all(len(c) <= 16 for c in chunks)
    joined = pd.concat(chunks, ignore_index=True)
    assert joined["text"].tolist() == frame["text"].tolist() and joined["shop"].tolist()[-1] == "uk"


@pytest.mark.parametrize("kind", FORMATS)
def test_a_file_with_no_rows_gives_the_header(shopmtl, deploy_run_dir, rows, tmp_path, kind):
    source, target = tmp_path / f"rows.{kind}", tmp_path / f"scored.{kind}"
    write_table(rows.head(0), source)
    result = shopmtl(
        "predict", deploy_run_dir, "--task", "toy_value", "--input", source, "--output", target
    )
    assert result.exit_code == 0, result.output
    if kind != "jsonl":  # an empty JSON Lines file has no header to keep
        assert list(read_table(target).columns) == [*rows.columns, "prediction"]


def test_the_output_may_not_be_the_input(shopmtl, deploy_run_dir, rows, tmp_path):
    source = tmp_path / "rows.csv"
    write_table(rows, source)
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    result = shopmtl(
        "predict",
        deploy_run_dir,
        "--task",
        "toy_value",
        "--input",
        source,
        "--output",
        tmp_path / "sub" / ".." / "rows.csv",
    )
    assert result.exit_code == 1 and "is the input file itself" in result.output
    assert source.read_bytes() == before


def test_infinite_numbers_are_refused_with_row_and_column_and_nothing_is_written(
    shopmtl, deploy_run_dir, rows, tmp_path
):
    source, target = tmp_path / "rows.parquet", tmp_path / "scored.parquet"
    write_table(rows.assign(x=np.where(np.arange(len(rows)) == 44, np.inf, rows["x"])), source)
    result = shopmtl(
        "predict",
        deploy_run_dir,
        "--task",
        "toy_value",
        "--input",
        source,
        "--output",
        target,
        "--chunk-rows",
        10,
    )  # the bad row is in the fifth chunk: four were written already
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "row 45" in result.output and "'x'" in result.output and str(source) in result.output
    assert not target.exists() and leftovers(tmp_path) == []
    # NaN (an empty cell) is a missing value, as in training
    write_table(rows.assign(x=np.nan), source)
    assert (
        shopmtl(
            "predict", deploy_run_dir, "--task", "toy_value", "--input", source, "--output", target
        ).exit_code
        == 0
    )


def test_unreadable_input_and_missing_onnx_graphs_are_named(
    shopmtl, deploy_run_dir, rows, tmp_path
):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    result = shopmtl(
        "predict",
        deploy_run_dir,
        "--task",
        "toy_value",
        "--input",
        broken,
        "--output",
        tmp_path / "o.parquet",
    )
    assert result.exit_code == 1 and f"cannot read {broken} as parquet" in result.output
    source = tmp_path / "rows.csv"
    write_table(rows, source)
    result = shopmtl(
        "predict",
        deploy_run_dir,
        "--task",
        "toy_value",
        "--input",
        source,
        "--output",
        tmp_path / "o.csv",
        "--engine",
        "onnxruntime",
    )
    assert (
        result.exit_code == 1
        and "holds no ONNX model" in result.output
        and "shopmtl export" in result.output
    )
    assert not (tmp_path / "o.csv").exists()
