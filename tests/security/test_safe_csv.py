"""predict's CSV output never hands a spreadsheet a formula: OWASP's leading quote, numbers untouched."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from reliability.harness import invoke, rows_file
from shopmtl.core.data.tableio import escape_formulas

ATTACKS = ['=HYPERLINK("http://x")', "+1+cmd", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


def test_escape_formulas_quotes_text_cells_and_leaves_numbers_alone():
    frame = pd.DataFrame(
        {
            "text": [*ATTACKS, "plain", "-3.5", None],
            "number": [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, -7.0, 8.0, None],
            "=header": ["a"] * 9,
        }
    )
    out = escape_formulas(frame)
    assert out["text"].tolist()[:6] == ["'" + a for a in ATTACKS]
    assert out["text"].tolist()[6:8] == ["plain", "-3.5"]  # text that is a plain number stays
    assert out["text"].isna().tolist()[8]
    assert out["number"].equals(frame["number"])
    assert list(out.columns) == ["text", "number", "'=header"]
    assert frame["text"].tolist()[0] == ATTACKS[0]  # the input frame is not changed


@pytest.fixture
def ws(toy_run, tmp_path):
    shutil.copytree(toy_run.output_dir, tmp_path / "run")
    return tmp_path


def _predict(ws, source, target, *extra):
    return invoke(
        "toy",
        [
            "predict",
            ws / "run",
            "--task",
            "toy_value",
            "--input",
            source,
            "--output",
            target,
            *extra,
        ],
    )


def test_predict_csv_escapes_formulas_by_default_and_not_with_the_opt_out(ws):
    source = rows_file(ws, text_0="=1+2 word", other_1="@evil")
    assert _predict(ws, source, ws / "out.csv").exit_code == 0
    escaped = pd.read_csv(ws / "out.csv", keep_default_na=False)
    assert escaped["text"][0] == "'=1+2 word" and escaped["other"][1] == "'@evil"
    numbers = pd.read_csv(ws / "out.csv")["x"]
    assert numbers.dtype.kind == "f" and (numbers < 0).any()  # numbers stay numbers, negative too
    raw = _predict(ws, source, ws / "raw.csv", "--no-csv-escape")
    assert raw.exit_code == 0, raw.output
    assert pd.read_csv(ws / "raw.csv")["text"][0] == "=1+2 word"


def test_predict_parquet_is_written_as_it_is(ws):
    frame = pd.read_csv(rows_file(ws, text_0="=1+2 word"))
    frame.to_parquet(ws / "in.parquet", index=False)
    result = _predict(ws, ws / "in.parquet", ws / "out.parquet")
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(ws / "out.parquet")["text"][0] == "=1+2 word"
