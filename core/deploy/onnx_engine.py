"""Run an exported ONNX model (``shopmtl export --format onnx``) on onnxruntime.

:class:`OnnxModel` offers the few members of :class:`~shopmtl.core.model.MultiTaskModel`
that :class:`~shopmtl.core.engine.evaluate.Scorer` calls -- ``encoder``, ``apply_head``,
``token_tasks``, ``eval`` -- so predictions go through the same code as the PyTorch
path: the same row encoding, text de-duplication, task ``predict`` and ``decode``.

:func:`load_onnx_run` reads an export without building any PyTorch model: the config,
the tasks' feature states and calibration, the tokenizer, and the graphs. The run is
verified against its manifest first, as every command does (its safetensors files are
hashed, never loaded). torch itself is still imported, as a tensor library: the text
bank pads into tensors and a task's ``predict`` hook takes one (the plugin contract).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.deploy.fp32 import Fp32Runtime
from shopmtl.core.engine.evaluate import Scorer
from shopmtl.core.engine.predict import LoadedRun, RunError, read_tasks
from shopmtl.core.model.encoder import load_saved_tokenizer
from shopmtl.core.runs import checkpoint
from shopmtl.core.runs.manifest import read_json_file, task_name
from shopmtl.registry.spec import TaskSpec

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

    def train(self) -> OnnxModel:
        return self  # evaluate() puts the model back in training mode; graphs have none

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


def load_onnx_run(
    run_dir: str | Path,
    registered: Mapping[str, TaskSpec],
    *,
    tasks: Sequence[str] = (),
    allow_pickle: bool = False,
) -> LoadedRun:
    """An ONNX export (``shopmtl export --format onnx``) ready to predict, with no PyTorch model.

    ``run.model`` is an :class:`OnnxModel` and ``run.accelerator`` a float32 CPU runtime, so
    :func:`~shopmtl.core.engine.predict.predict_tasks` and ``Scorer`` use it as a run.
    The tasks are the manifest's (only ``tasks`` when given); ``registered``
    (``PluginSet.tasks``) must provide them. ``allow_pickle``: as for
    :func:`~shopmtl.core.engine.predict.load_run`.
    """
    run_dir = Path(run_dir)
    try:
        folder = checkpoint.source_model_dir(run_dir)  # the whole run verified, as load_run does
    except FileNotFoundError as error:
        raise RunError(str(error)) from None
    model = load_onnx_model(run_dir, list(tasks) or None)
    config = checkpoint.read_run_config(run_dir)
    specs, features = read_tasks(
        run_dir,
        config,
        folder,
        registered,
        list(model.heads),
        tasks=tasks,
        allow_pickle=allow_pickle,
    )
    bank = TextBank(load_saved_tokenizer(folder / "backbone"), config.encoder.max_length)
    return LoadedRun(
        run_dir,
        config,
        specs,
        features,
        model,  # type: ignore[arg-type]  # Scorer's interface of MultiTaskModel
        bank,
        Fp32Runtime(),  # type: ignore[arg-type]  # Scorer needs .device and .autocast() only
        checkpoint.read_calibration(folder, list(specs)),
    )


def onnx_scorer(run: LoadedRun, model: OnnxModel) -> Scorer:
    """A :class:`Scorer` whose encoder and heads run on onnxruntime (float32, CPU)."""
    return Scorer(Fp32Runtime(), model, run.bank, run.config.training.eval_batch_size)  # type: ignore[arg-type]
