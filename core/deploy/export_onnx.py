"""``shopmtl export --format onnx``: the encoder and each task's head as ONNX graphs.

The output folder is a complete run directory (its config, plugins, metrics and
safetensors model, written again from the loaded run, never copied byte for byte; and
its own manifest, so ``shopmtl predict`` and ``shopmtl serve`` read it as any run) plus
``onnx/``::

    onnx/encoder.onnx          input_ids, attention_mask (batch, sequence) -> pooled (batch, width)
    onnx/heads/<task>.onnx     pooled texts + row features (+ token ids) -> raw outputs
    onnx/manifest.json         each head's inputs, the opset, the checked difference

Every axis that varies (rows, distinct texts, tokens) is dynamic. Before the folder
appears, the graphs are run on onnxruntime over the run's test rows and compared with
PyTorch in float32: above ``MAX_ABS_DIFFERENCE`` the export fails and says by how much.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from shopmtl.core.data.prepare import prepare_task
from shopmtl.core.deploy.fp32 import Fp32Runtime
from shopmtl.core.deploy.merged import ExportError, merged_encoder
from shopmtl.core.deploy.onnx_engine import MANIFEST, ONNX_DIR, load_onnx_model
from shopmtl.core.engine.evaluate import Scorer
from shopmtl.core.engine.predict import LoadedRun
from shopmtl.core.files import atomic_dir
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.runs import checkpoint
from shopmtl.core.runs import manifest as run_manifest
from torch import nn
from torch.nn import functional as F

MAX_ABS_DIFFERENCE = 1e-3
OPSET = 17


class GatherMeanBag(nn.Module):
    """``nn.EmbeddingBag(mode="mean", padding_idx=p)`` on 2-D ids as gather + masked mean.

    The same numbers; ONNX has no embedding bag that skips a padding index.
    """

    def __init__(self, bag: nn.EmbeddingBag) -> None:
        super().__init__()
        self.weight = bag.weight
        self.padding_idx = bag.padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        vectors = F.embedding(ids, self.weight)
        if self.padding_idx is None:
            return vectors.mean(dim=1)
        keep = (ids != self.padding_idx).unsqueeze(-1).to(vectors.dtype)
        return (vectors * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)


def exportable(model: MultiTaskModel) -> MultiTaskModel:
    """A float32 copy of ``model``'s heads and sharing with mean embedding bags made exportable."""
    encoder, model.encoder = model.encoder, None  # heads only: do not copy the encoder's weights
    try:
        heads = copy.deepcopy(model).float().eval()
    finally:
        model.encoder = encoder
    for module in list(heads.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.EmbeddingBag) and child.mode == "mean":
                setattr(module, name, GatherMeanBag(child))
    return heads


class HeadGraph(nn.Module):
    """One task's sharing and head as a function of named tensors (what the graph computes)."""

    def __init__(self, model: MultiTaskModel, task: str, inputs: list[str]) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.inputs = inputs

    def forward(self, pooled: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model.apply_head(self.task, pooled, dict(zip(self.inputs, tensors)))


def head_inputs(run: LoadedRun, task: str) -> dict[str, torch.Tensor]:
    """Example tensors for tracing ``task``'s head, by input name (3 rows, 2 distinct texts)."""
    spec = run.specs[task]
    rows, texts = 3, 2
    inputs = {
        "pooled": torch.zeros(texts, run.model.encoder.hidden_size),
        "text_pos": torch.tensor([0, 1, 0]),
        "numeric": torch.zeros(rows, len(spec.numeric)),
        "numeric_missing": torch.zeros(rows, len(spec.numeric)),
        "categorical": torch.zeros(rows, len(spec.categorical), dtype=torch.int64),
    }
    if spec.text_pair:
        inputs["pair_pos"] = torch.tensor([1, 0, 1])
    if task in run.model.token_tasks:
        inputs["tokens"] = torch.full((texts, 5), run.bank.pad_id, dtype=torch.int64)
    if (
        run.features[task].prior is not None
    ):  # the classical prior runs in scikit-learn; its outputs feed the graph
        inputs["prior"] = torch.zeros(rows, spec.n_outputs)
    return inputs


_TEXTS = {0: "texts", 1: "tokens"}
_AXES = {"pooled": {0: "texts"}, "tokens": _TEXTS, "input_ids": _TEXTS, "attention_mask": _TEXTS}


def _export(module: nn.Module, inputs: dict[str, torch.Tensor], path: Path, output: str) -> None:
    axes = {name: _AXES.get(name, {0: "rows"}) for name in inputs}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        # The TorchScript exporter: dynamic axes without the dynamo exporter's onnxscript dependency.
        torch.onnx.export(
            module,
            tuple(inputs.values()),
            str(path),
            input_names=list(inputs),
            output_names=[output],
            dynamic_axes={**axes, output: {0: "rows"}},
            opset_version=OPSET,
            dynamo=False,
        )


def write_graphs(run: LoadedRun, folder: Path) -> dict[str, object]:
    """Export the encoder and every head into ``folder``; the manifest's content."""
    (folder / "heads").mkdir(parents=True)
    encoder = merged_encoder(run.model.encoder).cpu()
    ids, mask = run.bank.pad(
        run.bank.ids_for(["an example product", "a longer example product description"])
    )
    _export(encoder, {"input_ids": ids, "attention_mask": mask}, folder / "encoder.onnx", "pooled")
    heads = exportable(run.model).cpu()
    tasks = {}
    for task in run.specs:
        inputs = head_inputs(run, task)
        _export(
            HeadGraph(heads, task, list(inputs)[1:]),
            inputs,
            folder / "heads" / f"{task}.onnx",
            "outputs",
        )
        tasks[task] = {"inputs": list(inputs), "tokens": "tokens" in inputs}
    return {"opset": OPSET, "tasks": tasks}


def check_graphs(run: LoadedRun, export_dir: Path, max_rows: int = 512) -> float:
    """Largest absolute difference between onnxruntime and PyTorch (float32) predictions
    on up to ``max_rows`` test rows of each task."""
    onnx_model = load_onnx_model(export_dir)
    runtime, size = Fp32Runtime(), run.config.training.eval_batch_size
    was = next(run.model.parameters()).device
    torch_scorer = Scorer(runtime, run.model.cpu(), run.bank, size)  # type: ignore[arg-type]
    onnx_scorer = Scorer(runtime, onnx_model, run.bank, size)  # type: ignore[arg-type]
    worst = 0.0
    try:
        for task in run.specs:
            prepared = prepare_task(run.specs[task], run.config, run.bank, state=run.features[task])
            rows = prepared.rows["test"]
            index = np.arange(min(len(rows), max_rows))
            expected = torch_scorer.predict_rows(prepared, rows, index)
            got = onnx_scorer.predict_rows(prepared, rows, index)
            worst = max(worst, float(np.abs(expected - got).max(initial=0.0)))
    finally:
        run.model.to(was)
    return worst


def export_onnx(run: LoadedRun, output: str | Path, check_rows: int = 512) -> float:
    """Write the run and its ONNX graphs to ``output`` (which must not exist); the checked difference."""
    output = Path(output)
    if output.exists():
        raise ExportError(
            f"{output} already exists: choose a new folder (an export never overwrites)"
        )
    with atomic_dir(output) as staging:
        write_run_files(run, staging)
        manifest = write_graphs(run, staging / ONNX_DIR)
        (staging / ONNX_DIR / MANIFEST).write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
        )
        difference = check_graphs(run, staging, check_rows)
        if difference > MAX_ABS_DIFFERENCE:
            raise ExportError(
                f"the ONNX graphs differ from PyTorch by up to {difference:.2e} on the run's test rows "
                f"(allowed: {MAX_ABS_DIFFERENCE:g}); nothing was written"
            )
        manifest["max_abs_difference"] = difference
        (staging / ONNX_DIR / MANIFEST).write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
        )
        if not run_manifest.trusting():  # never vouch for a run that was opened unverified
            run_manifest.write_run_manifest(staging)
    return difference


def write_run_files(run: LoadedRun, folder: Path) -> None:
    """The exported run directory's files, written again from the loaded run (never copied)."""
    checkpoint.write_yaml(folder / "config.yaml", run.config.model_dump(mode="json"))
    for name in ("plugins.json", "metrics.json"):
        if (run.run_dir / name).is_file():
            checkpoint.write_json(folder / name, checkpoint.read_json(run.run_dir / name))
    checkpoint.save_model_dir(
        folder / checkpoint.MODEL_DIR, run.model, run.features, run.bank.tokenizer
    )
    if run.calibration:
        model_dir = folder / checkpoint.MODEL_DIR
        checkpoint.write_json(model_dir / checkpoint.CALIBRATION, run.calibration)
        run_manifest.write_manifest(model_dir)
