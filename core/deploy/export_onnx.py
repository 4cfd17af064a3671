"""``shopmtl export --format onnx``: the encoder and each task's head as ONNX graphs.

The output folder is a complete run directory (its config, plugins, metrics and
safetensors model, written again from the loaded run, never copied byte for byte; and
its own manifest, so ``shopmtl predict`` and ``shopmtl serve`` read it as any run) plus
``onnx/``::

    onnx/encoder.onnx          input_ids, attention_mask (batch, sequence) -> pooled (batch, width)
    onnx/heads/<task>.onnx     pooled texts + row features (+ token ids) -> raw outputs
    onnx/manifest.json         each head's inputs, the opset, the encoder's fused operators
                               and quantisation, the checks' results

The encoder graph goes through onnxruntime's transformer optimiser (fused attention,
LayerNorm, GELU) and, with ``quantize="int8"``, dynamic int8 quantisation
(:mod:`shopmtl.core.deploy.onnx_encoder`). Every axis that varies (rows, distinct texts,
tokens) is dynamic. Before the folder appears, the graphs are run on onnxruntime over
the run's test rows and compared with PyTorch in float32
(:mod:`shopmtl.core.deploy.onnx_quality`): a float32 export fails above
``MAX_ABS_DIFFERENCE``; an int8 one fails when a task's primary metric on the test split
moves by more than ``max_metric_change``. Either says by how much.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from shopmtl.core.deploy.merged import ExportError
from shopmtl.core.deploy.onnx_encoder import export_encoder
from shopmtl.core.deploy.onnx_engine import MANIFEST, ONNX_DIR, load_onnx_model
from shopmtl.core.deploy.onnx_graph import OPSET, export_graph
from shopmtl.core.deploy.onnx_quality import (
    MAX_METRIC_CHANGE,
    MetricChange,
    max_abs_difference,
    primary_metric_changes,
    rebuilt_tasks,
    too_large,
)
from shopmtl.core.engine.predict import LoadedRun
from shopmtl.core.files import atomic_dir
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.runs import checkpoint
from shopmtl.core.runs import manifest as run_manifest
from torch import nn
from torch.nn import functional as F

MAX_ABS_DIFFERENCE = 1e-3


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


@dataclass
class OnnxExport:
    """What an ONNX export checked: the largest difference of any prediction from PyTorch's on
    the test rows and, for an int8 export, each task's primary metric from both engines."""

    max_abs_difference: float
    metric_changes: list[MetricChange] = field(default_factory=list)

    def summary(self) -> str:
        """One line: the difference and each checked metric's change."""
        line = f"max abs difference to PyTorch on the test rows {self.max_abs_difference:.2e}"
        changes = ", ".join(
            f"{c.task} {c.metric} {c.torch if c.torch is None else round(c.torch, 4)} -> "
            f"{c.onnx if c.onnx is None else round(c.onnx, 4)} ({c.change:+.4f})"
            for c in self.metric_changes
        )
        return f"{line}; test primary metrics, PyTorch -> ONNX: {changes}" if changes else line


def write_graphs(run: LoadedRun, folder: Path, quantize: str = "none") -> dict[str, Any]:
    """Export the encoder and every head into ``folder``; the manifest's content."""
    (folder / "heads").mkdir(parents=True)
    encoder = export_encoder(run.model.encoder, run.bank, folder / "encoder.onnx", quantize)
    heads = exportable(run.model).cpu()
    tasks = {}
    for task in run.specs:
        inputs = head_inputs(run, task)
        export_graph(
            HeadGraph(heads, task, list(inputs)[1:]),
            inputs,
            folder / "heads" / f"{task}.onnx",
            "outputs",
        )
        tasks[task] = {"inputs": list(inputs), "tokens": "tokens" in inputs}
    return {"opset": OPSET, "encoder": encoder, "tasks": tasks}


def check_graphs(
    run: LoadedRun, export_dir: Path, quantize: str, max_metric_change: float, max_rows: int
) -> OnnxExport:
    """Run the graphs in ``export_dir`` against the run's model on the test rows; raise
    :class:`ExportError` when they differ by more than allowed."""
    onnx_model = load_onnx_model(export_dir)
    tasks = rebuilt_tasks(run)
    checked = OnnxExport(max_abs_difference(run, onnx_model, tasks, max_rows))
    if quantize == "none":
        if checked.max_abs_difference > MAX_ABS_DIFFERENCE:
            raise ExportError(
                f"the ONNX graphs differ from PyTorch by up to {checked.max_abs_difference:.2e} on "
                f"the run's test rows (allowed: {MAX_ABS_DIFFERENCE:g}); nothing was written"
            )
        return checked
    checked.metric_changes = primary_metric_changes(run, onnx_model, tasks)
    beyond = too_large(checked.metric_changes, max_metric_change)
    if beyond:
        moved = ", ".join(f"{c.task} {c.metric} by {c.change:+.4f}" for c in beyond)
        raise ExportError(
            f"{quantize} moves the primary metric on the test split beyond {max_metric_change:g}: "
            f"{moved}; nothing was written (export without --quantize, or allow more with "
            "--max-metric-change)"
        )
    return checked


def export_onnx(
    run: LoadedRun,
    output: str | Path,
    check_rows: int = 512,
    quantize: str = "none",
    max_metric_change: float = MAX_METRIC_CHANGE,
) -> OnnxExport:
    """Write the run and its ONNX graphs to ``output`` (which must not exist); what was checked.

    ``quantize``: ``none`` (the optimised float32 encoder) or ``int8``.
    """
    output = Path(output)
    if output.exists():
        raise ExportError(
            f"{output} already exists: choose a new folder (an export never overwrites)"
        )
    with atomic_dir(output) as staging:
        write_run_files(run, staging)
        manifest = write_graphs(run, staging / ONNX_DIR, quantize)
        (staging / ONNX_DIR / MANIFEST).write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
        )
        checked = check_graphs(run, staging, quantize, max_metric_change, check_rows)
        manifest["max_abs_difference"] = checked.max_abs_difference
        if checked.metric_changes:
            manifest["test_primary_metrics"] = {c.task: c.as_dict() for c in checked.metric_changes}
        (staging / ONNX_DIR / MANIFEST).write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
        )
        if not run_manifest.trusting():  # never vouch for a run that was opened unverified
            run_manifest.write_run_manifest(staging)
    return checked


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
