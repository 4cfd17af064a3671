"""Run an exported ONNX model (``shopmtl export --format onnx``) on onnxruntime.

:class:`OnnxModel` offers the few members of :class:`~shopmtl.core.model.MultiTaskModel`
that :class:`~shopmtl.core.engine.evaluate.Scorer` calls -- ``encoder``, ``apply_head``,
``token_tasks``, ``eval`` -- so predictions go through the same code as the PyTorch
path: the same row encoding, text de-duplication, task ``predict`` and ``decode``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from shopmtl.core.deploy.fp32 import Fp32Runtime
from shopmtl.core.engine.evaluate import Scorer
from shopmtl.core.engine.predict import LoadedRun, RunError
from shopmtl.core.runs.manifest import read_json_file, task_name

ONNX_DIR = "onnx"
MANIFEST = "manifest.json"


def _session(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise RunError("onnxruntime is not installed: pip install 'shopmtl[onnx]'") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """Token ids and mask in, pooled float32 vectors out (one shared encoder graph)."""

    def __init__(self, path: Path) -> None:
        self.session = _session(path)

    def adapter_for(self, task: str) -> None:
        return None  # export refuses per-task adapters: one encoder serves every task

    def use_adapter(self, task: str) -> None:
        return None

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        (pooled,) = self.session.run(
            None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        )
        return torch.from_numpy(pooled)


class OnnxModel:
    """The exported encoder and heads, with the interface :class:`Scorer` uses."""

    def __init__(self, folder: Path, manifest: Mapping[str, Any]) -> None:
        self.encoder = OnnxEncoder(folder / "encoder.onnx")
        self.heads = {
            task: _session(folder / "heads" / f"{task}.onnx") for task in manifest["tasks"]
        }
        self._inputs = {
            task: [i.name for i in session.get_inputs()] for task, session in self.heads.items()
        }
        self.token_tasks = frozenset(t for t, info in manifest["tasks"].items() if info["tokens"])

    def eval(self) -> OnnxModel:
        return self

    def share(self, task: str, pooled: torch.Tensor) -> torch.Tensor:
        """The pooled vectors unchanged: each head graph applies the sharing gates itself."""
        return pooled

    def apply_head(
        self,
        task: str,
        pooled: torch.Tensor,
        batch: Mapping[str, torch.Tensor],
        shared: bool = False,
    ) -> torch.Tensor:
        """Raw head outputs of ``task`` for pooled texts (as ``MultiTaskModel.apply_head``; the graph
        starts at the pooled vector, so ``shared`` changes nothing)."""
        values = {"pooled": pooled, **batch}
        feed = {name: np.ascontiguousarray(values[name].numpy()) for name in self._inputs[task]}
        (raw,) = self.heads[task].run(None, feed)
        return torch.from_numpy(raw)


def load_onnx_model(run_dir: str | Path, tasks: Sequence[str] | None = None) -> OnnxModel:
    """The graphs in ``run_dir/onnx`` (written by ``shopmtl export --format onnx``), or a clear error.

    ``tasks``: open only these tasks' head graphs (default: all). Task names read from
    ``onnx/manifest.json`` are checked before they become file names.
    """
    folder = Path(run_dir) / ONNX_DIR
    if not (folder / MANIFEST).is_file():
        raise RunError(
            f"{run_dir} holds no ONNX model ({folder / MANIFEST} is missing): "
            f"export one with `shopmtl export {run_dir} --format onnx --output DIR` and predict on DIR"
        )
    manifest = read_json_file(folder / MANIFEST)
    graphs = manifest.get("tasks") if isinstance(manifest, dict) else None
    if not isinstance(graphs, dict):
        raise RunError(f"{folder / MANIFEST} lists no tasks: export the run again")
    for name in graphs:
        task_name(name, folder / MANIFEST)
    wanted = {t: info for t, info in graphs.items() if tasks is None or t in tasks}
    return OnnxModel(folder, {**manifest, "tasks": wanted})


def onnx_scorer(run: LoadedRun, model: OnnxModel) -> Scorer:
    """A :class:`Scorer` whose encoder and heads run on onnxruntime (float32, CPU)."""
    return Scorer(Fp32Runtime(), model, run.bank, run.config.training.eval_batch_size)  # type: ignore[arg-type]
