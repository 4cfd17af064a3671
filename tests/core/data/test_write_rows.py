"""`shopmtl data`'s writer: a task's rows streamed to Parquet in chunks, long repeated texts
handed to Arrow once per distinct value, and the file reading back as write_table's does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from shopmtl.core.data import tableio


@pytest.fixture
def rows() -> pd.DataFrame:
    history = ["LONG HISTORY " * 50 + str(k % 3) for k in range(1_000)]
    return pd.DataFrame(
        {
            "customer_id": np.arange(1_000) // 10,
            "history": pd.Series(history, dtype=object),
            "stock_code": [f"P{k}" for k in range(1_000)],  # all distinct: stays plain
            "description": pd.Series(
                [None if k == 7 else "MUG" for k in range(1_000)], dtype=object
            ),
            "week": pd.date_range("2011-01-03", periods=1_000, freq="D"),
            "label": np.linspace(0, 1, 1_000),
        }
    )


def test_chunks_read_back_as_write_table_writes(
    rows: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tableio, "ROWS_PER_CHUNK", 300)
    tableio.write_rows(rows, tmp_path / "rows.parquet")
    tableio.write_table(rows, tmp_path / "plain.parquet")
    streamed = pd.read_parquet(tmp_path / "rows.parquet")
    pd.testing.assert_frame_equal(
        streamed, pd.read_parquet(tmp_path / "plain.parquet"), check_exact=True
    )
    assert pq.ParquetFile(tmp_path / "rows.parquet").num_row_groups == 4
    assert str(pq.read_schema(tmp_path / "rows.parquet").field("history").type) == "string"


def test_empty_frame_and_other_formats(rows: pd.DataFrame, tmp_path: Path) -> None:
    tableio.write_rows(rows.head(0), tmp_path / "empty.parquet")
    assert list(pd.read_parquet(tmp_path / "empty.parquet").columns) == list(rows.columns)
    tableio.write_rows(rows.head(5), tmp_path / "rows.csv")
    assert len(pd.read_csv(tmp_path / "rows.csv")) == 5
