"""The encoder graph of an ONNX export: traced, fused by onnxruntime's transformer optimiser,
and optionally quantised to int8.

The backbone is traced with transformers' *eager* attention: its MatMul-Softmax-MatMul
pattern is what the optimiser recognises and fuses into one ``Attention`` operator (the
default SDPA attention traces to a pattern it leaves unfused). The optimiser also fuses
the embeddings and their LayerNorm, residual + LayerNorm (``SkipLayerNormalization``) and
bias + GELU; the numbers stay float32 (the export's check holds them to PyTorch).

``int8``: onnxruntime's dynamic quantisation of the optimised graph -- int8 weights
(per output channel, symmetric) in the matrix products, activations quantised at run
time per batch. It changes the numbers, so the export checks each task's primary metric
instead (:mod:`shopmtl.core.deploy.onnx_quality`).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shopmtl.core.data.textbank import TextBank
from shopmtl.core.deploy.merged import ExportError, merged_backbone
from shopmtl.core.deploy.onnx_graph import export_graph
from shopmtl.core.model.encoder import TextEncoder

#: ``--quantize`` choices: ``none`` keeps the optimised float32 graph.
QUANTIZE = ("none", "int8")
#: The operators whose weights int8 quantises: the dense projections (feed-forward, attention
#: output) and the fused attention's query/key/value projection.
INT8_OPERATORS = ("MatMul", "Gemm", "Attention")
_FLOAT = 1  # onnx.TensorProto.FLOAT, without importing onnx (the value is fixed by the ONNX spec)


def _onnxruntime_tools() -> tuple[Any, Any]:
    try:
        from onnxruntime.quantization import quantize_dynamic
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError as error:
        raise ExportError(
            f"the ONNX export needs onnx and onnxruntime ({error}): pip install 'shopmtl[onnx]'"
        ) from None
    return optimize_model, quantize_dynamic


def eager_encoder(encoder: TextEncoder) -> TextEncoder:
    """A float32 copy of ``encoder`` (LoRA merged) whose attention traces to plain operators."""
    backbone = merged_backbone(encoder)
    if hasattr(backbone, "set_attn_implementation"):
        backbone.set_attn_implementation("eager")
    return TextEncoder(backbone, encoder.pooling).eval()


def optimise(source: Path, target: Path, config: Any) -> dict[str, int]:
    """Run onnxruntime's transformer optimiser (BERT fusions, CPU) from ``source`` to ``target``;
    how many of each fused operator the graph now holds."""
    optimize_model, _ = _onnxruntime_tools()
    optimised = optimize_model(
        str(source),
        model_type="bert",
        # 0 = detect from the graph; given, so attention fuses even where detection fails
        num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
        hidden_size=int(getattr(config, "hidden_size", 0) or 0),
    )
    optimised.save_model_to_file(str(target))
    return {op: n for op, n in optimised.get_fused_operator_statistics().items() if n}


class _NoPreprocessingAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Drop the quantiser's advice to pre-process the graph (shape inference and clean-up,
    which the transformer optimiser has done), logged on the root logger for every graph."""
    hush = _NoPreprocessingAdvice()
    logging.getLogger().addFilter(hush)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(hush)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the graph ``source`` into ``target``."""
    _, quantize_dynamic = _onnxruntime_tools()
    from onnxruntime.quantization import QuantType

    with _quiet_quantizer():
        quantize_dynamic(
            source,
            target,
            op_types_to_quantize=list(INT8_OPERATORS),
            per_channel=True,  # one scale per output channel: per tensor loses MiniLM's small weights
            weight_type=QuantType.QInt8,
            # shape inference cannot type the fused (contrib) operators' outputs: they are float32
            extra_options={"DefaultTensorType": _FLOAT},
        )


def export_encoder(
    encoder: TextEncoder, bank: TextBank, path: Path, quantize: str = "none"
) -> dict[str, Any]:
    """Write the encoder graph to ``path``: traced, optimised, int8 when ``quantize`` says so;
    what the manifest records about it."""
    if quantize not in QUANTIZE:
        raise ExportError(f"--quantize {quantize!r}: choose one of {', '.join(QUANTIZE)}")
    module = eager_encoder(encoder).cpu()
    ids, mask = bank.pad(bank.ids_for(["an example product", "a longer example product text"]))
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        traced, optimised = Path(scratch) / "traced.onnx", Path(scratch) / "optimised.onnx"
        export_graph(module, {"input_ids": ids, "attention_mask": mask}, traced, "pooled")
        fused = optimise(traced, optimised, module.backbone.config)
        if quantize == "int8":
            quantize_int8(optimised, path)
        else:
            optimised.replace(path)
    return {"fused_operators": fused, "quantize": quantize}
