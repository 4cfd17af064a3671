"""``shopmtl export``: a transformers folder with the run's exact weights, and ONNX graphs
that onnxruntime runs with the PyTorch path's columns and values."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime  # noqa: F401,E402 -- the [onnx] extra, installed by the test command
import pytest
import torch
from shopmtl import BuildContext
from shopmtl import __version__ as SHOPMTL_VERSION
from shopmtl.core.data.tableio import read_table, write_table
from shopmtl.core.deploy import export_onnx as onnx_export
from shopmtl.core.model.encoder import TextEncoder
from toy_tasks import build
from transformers import AutoModel, AutoTokenizer


@pytest.fixture(scope="module")
def hf_dir(exported):
    return exported("hf")


@pytest.fixture(scope="module")
def onnx_dir(exported):
    return exported("onnx")


def test_hf_export_loads_with_auto_classes_and_the_runs_exact_weights(hf_dir, deploy_run):
    model = AutoModel.from_pretrained(hf_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    assert type(model).__name__ == "BertModel" and not any("lora" in k for k in model.state_dict())
    texts = ["red mug", "a large glass heart card", "blue"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    ids, mask = deploy_run.bank.pad(deploy_run.bank.ids_for(texts))
    assert torch.equal(batch["input_ids"], ids)
    with torch.no_grad():
        exported = TextEncoder(model, deploy_run.config.encoder.pooling)(
            batch["input_ids"], batch["attention_mask"]
        )
        trained = deploy_run.model.encoder(ids, mask)  # the run's LoRA-wrapped encoder, unmerged
    torch.testing.assert_close(exported, trained, rtol=1e-5, atol=1e-5)
    assert {p.name for p in (hf_dir / "heads").iterdir()} == {
        "toy_value.safetensors",
        "toy_flag.safetensors",
    }
    assert (hf_dir / "sharing.safetensors").is_file() and (hf_dir / "features.json").is_file()


def test_hf_model_card(hf_dir, deploy_run_dir):
    card = (hf_dir / "README.md").read_text()
    info = json.loads((hf_dir / "shopmtl.json").read_text())
    assert sorted(info["tasks"]) == ["toy_flag", "toy_value"] and info["pooling"] == "mean"
    metrics = json.loads((deploy_run_dir / "metrics.json").read_text())
    rmse = metrics["tasks"]["toy_value"]["test"]["rmse"]
    assert f"| rmse | {rmse:.4g} |" in card
    for heading in (
        "## Tasks",
        "## Test metrics beside baselines",
        "## Training data",
        "## Plugins",
        "## Intended use",
        "## Limits",
    ):
        assert heading in card
    assert (
        "CC BY 4.0" in card
        and f"| toy | {SHOPMTL_VERSION} |" in card
        and info["weights_sha256"] in card
    )


def test_onnx_engine_gives_the_torch_columns_and_values(shopmtl, onnx_dir, tmp_path):
    manifest = json.loads((onnx_dir / "onnx" / "manifest.json").read_text())
    assert manifest["max_abs_difference"] <= 1e-3
    assert manifest["tasks"]["toy_value"]["inputs"][:2] == ["pooled", "text_pos"]
    rows = build(BuildContext(settings=None))["test"].drop(columns=["value", "flag"]).head(50)
    source = tmp_path / "rows.parquet"
    write_table(rows, source)
    outputs = {}
    for engine in ("torch", "onnxruntime"):
        target = tmp_path / f"{engine}.parquet"
        result = shopmtl(
            "predict",
            onnx_dir,
            "--task",
            "toy_value",
            "--task",
            "toy_flag",
            "--input",
            source,
            "--output",
            target,
            "--engine",
            engine,
            "--precision",
            "no",
        )  # the graphs are fp32
        assert result.exit_code == 0, result.output
        outputs[engine] = read_table(target)
    assert list(outputs["torch"].columns) == list(outputs["onnxruntime"].columns)
    for column in ("toy_value.prediction", "toy_flag.probability"):
        np.testing.assert_allclose(
            outputs["onnxruntime"][column], outputs["torch"][column], atol=1e-3
        )


def test_onnx_graphs_take_any_batch_and_sequence_length(onnx_dir, deploy_run):
    from shopmtl.core.deploy.onnx_engine import load_onnx_model

    model = load_onnx_model(onnx_dir)
    for texts in (["red"], ["a " * 30 + "mug", "blue bag", "heart", "x"]):
        ids, mask = deploy_run.bank.pad(deploy_run.bank.ids_for(texts))
        with torch.no_grad():
            expected = deploy_run.model.encoder(ids, mask)
        torch.testing.assert_close(model.encoder(ids, mask), expected, atol=1e-4, rtol=1e-4)


def test_export_refuses_an_existing_target_a_run_without_weights_and_a_large_difference(
    shopmtl, deploy_run_dir, deploy_run, tmp_path, monkeypatch
):
    existing = tmp_path / "there"
    existing.mkdir()
    for kind in ("hf", "onnx"):
        result = shopmtl("export", deploy_run_dir, "--format", kind, "--output", existing)
        assert result.exit_code == 1 and "already exists" in result.output
    no_weights = tmp_path / "run"
    shutil.copytree(
        deploy_run_dir, no_weights, ignore=shutil.ignore_patterns("encoder.safetensors")
    )
    result = shopmtl("export", no_weights, "--format", "hf", "--output", tmp_path / "hf")
    assert result.exit_code == 1 and "model/encoder.safetensors is missing" in result.output
    assert not (tmp_path / "hf").exists()
    monkeypatch.setattr(onnx_export, "MAX_ABS_DIFFERENCE", 0.0)
    with pytest.raises(
        onnx_export.ExportError, match=r"differ from PyTorch by up to .* nothing was written"
    ):
        onnx_export.export_onnx(deploy_run, tmp_path / "strict")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "there"]


def test_per_task_adapters_cannot_be_exported(deploy_run):
    from shopmtl.core.deploy.merged import ExportError, merged_backbone

    encoder = TextEncoder(
        deploy_run.model.encoder.backbone, "mean", adapters=("toy_value", "toy_flag")
    )
    with pytest.raises(ExportError, match="one LoRA adapter per task"):
        merged_backbone(encoder)
