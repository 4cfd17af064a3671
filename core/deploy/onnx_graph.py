"""One PyTorch module as one ONNX graph with dynamic row, text and token axes."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 17

_TEXTS = {0: "texts", 1: "tokens"}
_AXES = {"pooled": {0: "texts"}, "tokens": _TEXTS, "input_ids": _TEXTS, "attention_mask": _TEXTS}


def export_graph(
    module: nn.Module, inputs: dict[str, torch.Tensor], path: Path, output: str
) -> None:
    """Trace ``module`` on the example ``inputs`` (named as the graph's inputs) into ``path``.

    Every axis that varies is dynamic: rows (axis 0 of row inputs), distinct texts and
    tokens (``pooled``, ``tokens``, ``input_ids``, ``attention_mask``).
    """
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
