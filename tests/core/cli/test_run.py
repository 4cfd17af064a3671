"""Using a trained run: ``predict`` (CSV, Parquet, JSONL), ``evaluate``, and the listing commands.

Prediction formats go through the Python functions the command is made of
(:func:`load_run`, :func:`predict_frame`, :mod:`shopmtl.core.data.tableio`); the command's
wiring is tested with a PluginSource of the toy plugin passed as click's context object;
``shopmtl plugins`` / ``shopmtl tasks`` load the real built-in plugins.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from shopmtl import BuildContext
from shopmtl.core.cli import cli
from shopmtl.core.cli.common import PluginSource
from shopmtl.core.data.tableio import TableFormatError, read_table, table_format, write_table
from shopmtl.core.engine.predict import RunError, load_run, predict_frame, predict_tasks
from toy_tasks import build

FORMATS = ["csv", "parquet", "jsonl"]
BUILTIN_TASKS = {"sales", "price_bin", "user_profile", "recommend"}


@pytest.fixture(scope="module")
def loaded(toy_run):
    return load_run(toy_run.output_dir, toy_run.plugins.tasks)


@pytest.fixture
def new_rows() -> pd.DataFrame:
    """Rows as a user would bring them: the task's inputs, no labels, with an extra column."""
    frame = build(BuildContext(settings=None))["test"].head(25).drop(columns=["value", "flag"])
    frame.insert(1, "note", [f"n{i}" for i in range(len(frame))])
    return frame.reset_index(drop=True)


@pytest.fixture
def toy_cli(toy_run, monkeypatch):
    """Invoke ``shopmtl`` in-process, its plugins being the toy ones."""
    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    source = PluginSource(load=lambda ctx, config=None: toy_run.plugins)

    def invoke(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args], obj=source)

    return invoke


def _read_as(path, kind: str) -> pd.DataFrame:
    """Read ``path`` with the reader of ``kind`` only: proves the file really is that format."""
    if kind == "csv":
        return pd.read_csv(path)
    if kind == "parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True)


# ----------------------------------------------------------------------------- formats (Python API)


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize(
    ("task", "added"), [("toy_value", ["prediction"]), ("toy_flag", ["probability"])]
)
def test_predict_round_trips_every_format(loaded, new_rows, tmp_path, kind, task, added):
    source, target = tmp_path / f"in.{kind}", tmp_path / f"out.{kind}"
    write_table(new_rows, source)
    assert table_format(source) == kind
    frame = read_table(source)
    write_table(predict_frame(loaded, task, frame, source=str(source)), target)

    out = _read_as(target, kind)
    assert list(out.columns) == [*new_rows.columns, *added]  # the input's columns, then predictions
    assert len(out) == len(new_rows)
    pd.testing.assert_series_equal(out["note"], new_rows["note"], check_dtype=False)
    assert out["row_id"].tolist() == new_rows["row_id"].tolist()  # same rows, same order
    assert out[added[0]].notna().all()
    if task == "toy_flag":
        assert out["probability"].between(0, 1).all()
    # Every format carries the same predictions (up to the text formats' float printing).
    direct = predict_frame(loaded, task, new_rows)
    np.testing.assert_allclose(
        out[added[0]].to_numpy(float), direct[added[0]].to_numpy(float), rtol=1e-5, atol=1e-6
    )


def test_prediction_columns_do_not_overwrite_input_columns(loaded, new_rows):
    frame = new_rows.assign(prediction="mine")
    out = predict_frame(loaded, "toy_value", frame)
    assert (out["prediction"] == "mine").all()
    assert out["prediction_predicted"].notna().all()


def test_predict_names_a_missing_input_column(loaded, new_rows):
    # A numeric input may be left out (read as missing); a text or category may not.
    with pytest.raises(RunError) as caught:
        predict_frame(loaded, "toy_value", new_rows.drop(columns=["shop"]), source="rows.csv")
    message = str(caught.value)
    assert "rows.csv" in message and "'shop'" in message and "shopmtl data toy_value" in message
    with pytest.raises(RunError, match="'other'"):
        predict_frame(loaded, "toy_flag", new_rows.drop(columns=["other"]))
    with pytest.raises(RunError, match="has no task 'sales'"):
        predict_frame(loaded, "sales", new_rows)


@pytest.mark.parametrize(
    ("task", "added"), [("toy_value", ["prediction"]), ("toy_flag", ["probability"])]
)
def test_predict_on_no_rows(loaded, new_rows, task, added):
    """An input with a header and no rows gives an output with a header and no rows.
    BUG today: ``decode_by_kind`` (registry/blocks.py) fails with "cannot reshape array
    of size 0 into shape (0,newaxis)"."""
    out = predict_frame(loaded, task, new_rows.head(0))
    assert len(out) == 0 and list(out.columns) == [*new_rows.columns, *added]


def test_keys_are_not_needed_to_predict(loaded, new_rows):
    """Keys identify rows (docs/plugins.md, `keys`); a file to score may lack them."""
    rows = new_rows.drop(columns=["row_id"])
    out = predict_frame(loaded, "toy_value", rows)
    assert list(out.columns) == [*rows.columns, "prediction"] and out["prediction"].notna().all()
    with_keys = predict_frame(loaded, "toy_value", new_rows)
    np.testing.assert_allclose(out["prediction"], with_keys["prediction"], rtol=1e-6)


def test_labels_are_not_needed_but_may_be_present(loaded):
    test = build(BuildContext(settings=None))["test"].head(10)
    out = predict_frame(loaded, "toy_value", test)
    assert list(out.columns) == [*test.columns, "prediction"]


def test_table_formats(tmp_path):
    assert (
        table_format("a.CSV") == "csv"
        and table_format("a.pq") == "parquet"
        and table_format("a.ndjson") == "jsonl"
    )
    with pytest.raises(TableFormatError, match=r"\.xlsx"):
        table_format("rows.xlsx")
    with pytest.raises(TableFormatError, match="no suffix"):
        table_format("rows")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_table(tmp_path / "missing.csv")
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(TableFormatError, match="broken.parquet"):
        read_table(broken)


def test_written_tables_respect_the_umask(new_rows, tmp_path):
    """``shopmtl predict``/``data`` output is as readable as any file the user writes.
    BUG today: write_table keeps mkstemp's private mode 0600 whatever the umask."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    for kind in FORMATS:
        path = tmp_path / f"rows.{kind}"
        write_table(new_rows, path)
        assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~mask), kind


# ----------------------------------------------------------------------------- the commands (wiring)


@pytest.mark.parametrize("kind", FORMATS)
def test_cli_predict(toy_cli, toy_run, new_rows, tmp_path, kind):
    source, target = tmp_path / f"rows.{kind}", tmp_path / f"scored.{kind}"
    write_table(new_rows, source)
    result = toy_cli(
        "predict", toy_run.output_dir, "--task", "toy_value", "--input", source, "--output", target
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {len(new_rows)} rows" in result.output
    out = _read_as(target, kind)
    assert list(out.columns) == [*new_rows.columns, "prediction"] and len(out) == len(new_rows)


def test_cli_predicts_several_tasks_in_one_encoder_pass(
    toy_cli, toy_run, loaded, new_rows, tmp_path
):
    source, target = tmp_path / "rows.csv", tmp_path / "scored.csv"
    write_table(new_rows, source)
    result = toy_cli(
        "predict",
        toy_run.output_dir,
        "--task",
        "toy_value",
        "--task",
        "toy_flag",
        "--input",
        source,
        "--output",
        target,
    )
    assert result.exit_code == 0, result.output
    assert "'toy_value', 'toy_flag'" in result.output
    out = read_table(target)
    assert list(out.columns) == [*new_rows.columns, "toy_value.prediction", "toy_flag.probability"]
    # The same values as one task at a time.
    alone = predict_frame(loaded, "toy_flag", new_rows)
    np.testing.assert_allclose(out["toy_flag.probability"], alone["probability"], rtol=1e-5)
    # Each distinct text is encoded once for both tasks: count the texts the encoder sees.
    seen: list[int] = []
    hook = loaded.model.encoder.register_forward_hook(
        lambda module, args, output: seen.append(output.shape[0])
    )
    try:
        predict_tasks(loaded, ["toy_value", "toy_flag"], new_rows)
    finally:
        hook.remove()
    distinct = set(new_rows["text"]) | set(new_rows["other"])
    assert sum(seen) == len(distinct)


def test_cli_predict_errors(toy_cli, toy_run, new_rows, tmp_path):
    source = tmp_path / "rows.csv"
    write_table(new_rows.drop(columns=["shop"]), source)

    missing = toy_cli(
        "predict",
        toy_run.output_dir,
        "--task",
        "toy_value",
        "--input",
        source,
        "--output",
        tmp_path / "o.csv",
    )
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert "Error:" in missing.output and "'shop'" in missing.output
    assert not (tmp_path / "o.csv").exists()

    mismatched = toy_cli(
        "predict",
        toy_run.output_dir,
        "--task",
        "toy_value",
        "--input",
        source,
        "--output",
        tmp_path / "o.parquet",
    )
    assert mismatched.exit_code == 2  # a usage error
    assert "--output" in mismatched.output and "csv" in mismatched.output
    assert not (tmp_path / "o.parquet").exists()

    unknown = toy_cli(
        "predict",
        toy_run.output_dir,
        "--task",
        "toy_valeu",
        "--input",
        source,
        "--output",
        tmp_path / "o.csv",
    )
    assert unknown.exit_code == 1 and "has no task 'toy_valeu'" in unknown.output

    suffix = toy_cli(
        "predict",
        toy_run.output_dir,
        "--task",
        "toy_value",
        "--input",
        tmp_path / "rows.xlsx",
        "--output",
        tmp_path / "o.xlsx",
    )
    assert suffix.exit_code == 1 and "unknown table format .xlsx" in suffix.output

    not_a_run = toy_cli(
        "predict",
        tmp_path,
        "--task",
        "toy_value",
        "--input",
        source,
        "--output",
        tmp_path / "o.csv",
    )
    assert not_a_run.exit_code == 1 and "not a finished shopmtl run" in not_a_run.output


def test_cli_evaluate_json(toy_cli, toy_run):
    result = toy_cli("evaluate", toy_run.output_dir, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics == {task: splits["test"] for task, splits in toy_run.result.metrics.items()}
    val = toy_cli("evaluate", toy_run.output_dir, "--split", "val", "--json")
    assert json.loads(val.output) == {
        task: splits["val"] for task, splits in toy_run.result.metrics.items()
    }
    table = toy_cli("evaluate", toy_run.output_dir)
    assert (
        table.exit_code == 0 and "toy_value (regression)" in table.output and "rmse" in table.output
    )


# ----------------------------------------------------------------------------- listing commands (real built-ins)


@pytest.fixture
def builtin_cli(monkeypatch):
    monkeypatch.setenv("SHOPMTL_PLUGINS", "")  # the built-ins only, whatever else is installed
    monkeypatch.delenv("SHOPMTL_STRICT_PLUGINS", raising=False)

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args))

    return invoke


def test_cli_plugins_json(builtin_cli):
    result = builtin_cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    reports = json.loads(result.output)
    owners = {task: r["name"] for r in reports for task in r["tasks"]}
    assert BUILTIN_TASKS <= set(owners)
    for report in reports:
        assert report["error"] is None, report
        assert report["source"] == "builtin" and report["version"] not in ("", "unknown")
    table = builtin_cli("plugins")
    assert table.exit_code == 0 and "recommend" in table.output


def test_cli_tasks_json(builtin_cli):
    result = builtin_cli("tasks", "--json")
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.output)}
    assert set(records) == BUILTIN_TASKS
    kinds = {name: r["kind"] for name, r in records.items()}
    assert kinds == {
        "sales": "regression",
        "price_bin": "multiclass",
        "user_profile": "multilabel",
        "recommend": "binary",
    }
    for record in records.values():
        assert record["primary_metric"] in record["metrics"]
        assert record["text"] and record["labels"] and record["plugin"]
    assert "ranking_negatives" in records["recommend"]["settings"]
    table = builtin_cli("tasks")
    assert table.exit_code == 0 and all(name in table.output for name in BUILTIN_TASKS)


def test_cli_block_a_builtin(builtin_cli):
    result = builtin_cli("--block", "recommend", "tasks", "--json")
    assert result.exit_code == 0, result.output
    assert {r["name"] for r in json.loads(result.output)} == BUILTIN_TASKS - {"recommend"}
