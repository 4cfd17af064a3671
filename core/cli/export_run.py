"""What ``shopmtl export`` does once its options are parsed: load the run, write the export."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_run(
    run_dir: str,
    plugins: Any,
    kind: str,
    output_dir: str,
    allow_pickle: bool = False,
    quantize: str = "none",
    max_metric_change: float | None = None,
) -> str:
    """Export ``run_dir`` as ``kind`` (``hf`` or ``onnx``) into the new folder ``output_dir``;
    a line saying what was written. ``quantize`` and ``max_metric_change``: ONNX only."""
    from shopmtl.core.deploy.merged import ExportError
    from shopmtl.core.engine.predict import load_run

    if Path(output_dir).exists():
        raise ExportError(
            f"{output_dir} already exists: choose a new folder (an export never overwrites)"
        )
    if kind != "onnx" and (quantize != "none" or max_metric_change is not None):
        raise ExportError(
            f"--quantize and --max-metric-change apply to --format onnx, not {kind}: drop them"
        )
    run = load_run(
        run_dir, plugins.tasks, plugins.sharing_kinds, precision="no", allow_pickle=allow_pickle
    )  # exports are fp32
    if kind == "hf":
        from shopmtl.core.deploy.export_hf import export_hf

        export_hf(run, output_dir)
        return f"wrote {output_dir}: AutoModel.from_pretrained({output_dir!r}) loads the encoder"
    from shopmtl.core.deploy.export_onnx import MAX_METRIC_CHANGE, export_onnx

    limit = MAX_METRIC_CHANGE if max_metric_change is None else max_metric_change
    checked = export_onnx(run, output_dir, quantize=quantize, max_metric_change=limit)
    return (
        f"wrote {output_dir} (encoder: {'int8' if quantize == 'int8' else 'float32'}, optimised): "
        f"{checked.summary()}; `shopmtl predict {output_dir} --engine onnxruntime ...` runs it"
    )
