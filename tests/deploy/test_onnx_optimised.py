"""The ONNX path's speed-ups, on the deploy toy run (tiny encoder, seconds): the encoder graph
fused by onnxruntime's transformer optimiser, the int8 export and its metric check, and
``--engine onnxruntime`` predicting without building any PyTorch model."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime  # noqa: F401 -- the [onnx] extra, installed by the test command
import pytest
import torch
from shopmtl import BuildContext
from shopmtl.core.data.tableio import read_table, write_table
from shopmtl.core.deploy import export_onnx as onnx_export
from shopmtl.core.deploy.onnx_engine import load_onnx_model
from toy_tasks import build

LAYERS = 2  # the smoke config's tiny encoder


@pytest.fixture(scope="module")
def onnx_dir(exported):
    return exported("onnx")


@pytest.fixture(scope="module")
def int8_dir(deploy_run, tmp_path_factory):
    """The deploy run exported with ``quantize="int8"`` (what ``--quantize int8`` runs)."""
    target = tmp_path_factory.mktemp("int8") / "export"
    onnx_export.export_onnx(deploy_run, target, quantize="int8")
    return target


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory):
    rows = build(BuildContext(settings=None))["test"].drop(columns=["value", "flag"]).head(60)
    path = tmp_path_factory.mktemp("rows") / "rows.parquet"
    write_table(rows, path)
    return path


def graph_operators(path) -> list[str]:
    import onnx

    return [node.op_type for node in onnx.load(str(path)).graph.node]


def predict_columns(shopmtl, run_dir, rows_file, target, engine):
    result = shopmtl(
        "predict",
        run_dir,
        "--task",
        "toy_value",
        "--task",
        "toy_flag",
        "--input",
        rows_file,
        "--output",
        target,
        "--engine",
        engine,
        "--precision",
        "no",
    )
    assert result.exit_code == 0, result.output
    return read_table(target)


def test_the_encoder_graph_is_fused_and_still_matches_torch(onnx_dir, deploy_run):
    manifest = json.loads((onnx_dir / "onnx" / "manifest.json").read_text())
    fused = manifest["encoder"]["fused_operators"]
    assert manifest["encoder"]["quantize"] == "none"
    assert fused.get("Attention") == LAYERS and fused.get("SkipLayerNormalization") == 2 * LAYERS
    operators = set(graph_operators(onnx_dir / "onnx" / "encoder.onnx"))
    assert {"Attention", "EmbedLayerNormalization", "SkipLayerNormalization"} <= operators
    assert "Softmax" not in operators  # attention runs as one operator, not its pieces
    model = load_onnx_model(onnx_dir)
    ids, mask = deploy_run.bank.pad(deploy_run.bank.ids_for(["red", "a " * 20 + "mug", "blue"]))
    with torch.no_grad():
        expected = deploy_run.model.encoder(ids, mask)
    torch.testing.assert_close(model.encoder(ids, mask), expected, atol=1e-4, rtol=1e-4)


def test_int8_export_quantises_the_encoder_and_records_each_tasks_metric_change(int8_dir, onnx_dir):
    manifest = json.loads((int8_dir / "onnx" / "manifest.json").read_text())
    assert manifest["encoder"]["quantize"] == "int8"
    operators = graph_operators(int8_dir / "onnx" / "encoder.onnx")
    # every layer's projections run on int8 weights: attention (QAttention) and the dense
    # layers (MatMulInteger on activations quantised at run time); no float MatMul is left
    assert operators.count("QAttention") == LAYERS and "Attention" not in operators
    assert operators.count("MatMulInteger") == 3 * LAYERS and "MatMul" not in operators
    assert "DynamicQuantizeLinear" in operators
    checked = manifest["test_primary_metrics"]
    assert checked["toy_value"]["metric"] == "rmse" and checked["toy_flag"]["metric"] == "auc"
    for task in ("toy_value", "toy_flag"):
        entry = checked[task]
        assert entry["change"] == pytest.approx(entry["onnx"] - entry["torch"])
        assert abs(entry["change"]) <= onnx_export.MAX_METRIC_CHANGE


def test_int8_predictions_stay_close_to_torch(shopmtl, int8_dir, rows_file, tmp_path):
    torch_out = predict_columns(shopmtl, int8_dir, rows_file, tmp_path / "t.parquet", "torch")
    int8_out = predict_columns(shopmtl, int8_dir, rows_file, tmp_path / "q.parquet", "onnxruntime")
    assert list(int8_out.columns) == list(torch_out.columns)
    for column in ("toy_value.prediction", "toy_flag.probability"):
        difference = np.abs(int8_out[column] - torch_out[column])
        assert difference.max() < 0.1 and difference.max() > 0  # int8 moves the numbers, a little


def test_int8_export_refuses_a_metric_change_beyond_the_limit(deploy_run, tmp_path):
    with pytest.raises(
        onnx_export.ExportError, match=r"moves the primary metric .* nothing was written"
    ):
        onnx_export.export_onnx(deploy_run, tmp_path / "q", quantize="int8", max_metric_change=-1)
    assert not (tmp_path / "q").exists()


def test_quantize_is_refused_for_the_hf_format(shopmtl, deploy_run_dir, tmp_path):
    result = shopmtl(
        "export", deploy_run_dir, "--format", "hf", "--quantize", "int8", "--output", tmp_path / "x"
    )
    assert result.exit_code == 1 and "apply to --format onnx" in result.output
    assert not (tmp_path / "x").exists()


def test_onnxruntime_engine_builds_no_torch_model(
    shopmtl, onnx_dir, rows_file, tmp_path, monkeypatch
):
    expected = predict_columns(shopmtl, onnx_dir, rows_file, tmp_path / "t.parquet", "torch")

    def no_module(*args, **kwargs):
        raise AssertionError("the onnxruntime engine built a torch.nn.Module")

    monkeypatch.setattr(torch.nn.Module, "__init__", no_module)
    got = predict_columns(shopmtl, onnx_dir, rows_file, tmp_path / "o.parquet", "onnxruntime")
    with pytest.raises(AssertionError, match="built a torch.nn.Module"):
        torch.nn.Linear(2, 2)  # the spy does catch a model being built
    monkeypatch.undo()
    assert list(got.columns) == list(expected.columns)
    for column in ("toy_value.prediction", "toy_flag.probability"):
        np.testing.assert_allclose(got[column], expected[column], atol=1e-3)
