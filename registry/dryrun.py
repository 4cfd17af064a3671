"""Registration's dry run: build a task's head, run it on a dummy batch, back-propagate its loss.

Catches at registration what would otherwise fail mid-run: a head of the wrong width, a
loss that returns NaN on a missing label or no gradient, a ``predict``/``decode`` that
does not fit the kind.
"""

from __future__ import annotations

import math
from typing import Any

from shopmtl.registry.messages import error, short
from shopmtl.registry.spec import TaskSpec

#: Sizes of the dummy batch the head and the loss are tried on.
_BATCH = 4
_HIDDEN = 8
_CARDINALITY = 3


def check_head_and_loss(spec: TaskSpec) -> list[str]:
    """Build the task's head, run it on a dummy batch and back-propagate its loss.

    The batch has 4 rows, a hidden size of 8, one numeric column per ``spec.numeric``,
    a vocabulary of 3 per categorical column, and its first label set to ``NaN`` (a
    missing label the loss must skip). Expects a sound schema (see :func:`validate_task`).
    """
    import torch  # here, not at the top: `import shopmtl.registry.manager` stays light
    from shopmtl.registry.spec import HeadInput, HeadSpec

    n_out = spec.n_outputs
    head_spec = HeadSpec(
        hidden_size=_HIDDEN,
        n_numeric=len(spec.numeric),
        categorical_cardinalities=(_CARDINALITY,) * len(spec.categorical),
        has_pair=spec.text_pair is not None,
        n_outputs=n_out,
    )

    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        gen = torch.Generator().manual_seed(0)
        batch = HeadInput(
            text=torch.randn(_BATCH, _HIDDEN, generator=gen),
            pair=torch.randn(_BATCH, _HIDDEN, generator=gen)
            if spec.text_pair is not None
            else None,
            numeric=torch.randn(_BATCH, len(spec.numeric), generator=gen),
            numeric_missing=torch.zeros(_BATCH, len(spec.numeric)),
            categorical=torch.randint(
                0, _CARDINALITY, (_BATCH, len(spec.categorical)), generator=gen
            ),
        )
        labels = _dummy_labels(spec, gen)
        outputs = _head_outputs(spec, head_spec, batch)
        if isinstance(outputs, list):
            return outputs
        problems = _loss_problems(spec, outputs, labels) or _prediction_problems(spec, outputs)
    return problems


def _head_outputs(spec: TaskSpec, head_spec: Any, batch: Any) -> Any:
    """The head's outputs on the dummy batch, or ``[problem]``.

    Only what the plugin hands over is exercised: without ``build_head`` shopmtl's default
    head is used, whose output is ``(B, n_outputs)`` by construction, so a tensor of that
    shape stands in for it.
    """
    import torch

    n_out = spec.n_outputs
    if spec.build_head is None:
        return torch.randn(_BATCH, n_out, requires_grad=True)
    head_name = "build_head"
    build_head = spec.build_head
    where = (
        f"(batch of {_BATCH}, hidden_size={_HIDDEN}, {len(spec.numeric)} numeric, "
        f"{len(spec.categorical)} categorical, text_pair={'yes' if spec.text_pair else 'no'})"
    )
    try:
        head = build_head(head_spec)
    except Exception as exc:  # noqa: BLE001 -- any failure is the plugin's, and reported
        return [
            f"{head_name} raised {error(exc)} when built from {head_spec}: it must accept a HeadSpec"
        ]
    if not isinstance(head, torch.nn.Module):
        return [f"{head_name} returned {short(head)}, not a torch.nn.Module: return an nn.Module"]
    head.train()
    try:
        outputs = head(batch)
    except Exception as exc:  # noqa: BLE001
        return [
            f"{head_name} raised {error(exc)} on a dummy batch {where}: its forward must take a "
            "HeadInput and use HeadSpec's sizes (hidden_size, n_numeric, categorical_cardinalities, has_pair)"
        ]
    if not isinstance(outputs, torch.Tensor):
        return [
            f"{head_name} returned {short(outputs)}, not a tensor: return a ({_BATCH}, n_outputs) tensor"
        ]
    if tuple(outputs.shape) != (_BATCH, n_out):
        return [
            f"head returned shape {tuple(outputs.shape)} but kind {spec.kind!r} needs ({_BATCH}, {n_out}): "
            f"make build_head output n_outputs=spec.n_outputs columns ({_why_n_outputs(spec)})"
        ]
    return outputs


def _loss_problems(spec: TaskSpec, outputs: Any, labels: Any) -> list[str]:
    """The loss on the head's outputs: a finite scalar connected to them, that back-propagates."""
    import torch

    if spec.loss is None:  # shopmtl's own masked loss for the kind, tested by shopmtl
        return []
    loss_fn = spec.loss
    loss_name = "loss"
    head_name = "build_head" if spec.build_head else "the default head"
    n_out = spec.n_outputs
    try:
        loss = loss_fn(outputs, labels)
    except Exception as exc:  # noqa: BLE001
        return [
            f"{loss_name} raised {error(exc)} on outputs {tuple(outputs.shape)} and labels "
            f"{tuple(labels.shape)}: loss(outputs, labels) must take the head's (B, {n_out}) output and "
            f"(B, {len(spec.labels)}) labels"
        ]
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        return [f"{loss_name} returned {shape}, not a scalar tensor: reduce it, e.g. with .mean()"]
    if not torch.isfinite(loss.detach()):
        return [
            f"{loss_name} returned {loss.item()} on a batch with one missing (NaN) label: skip missing "
            "labels, e.g. labels[~torch.isnan(labels)] as shopmtl.core.model.losses.masked_mse does"
        ]
    if not loss.requires_grad:
        return [
            f"{loss_name} is not connected to the head's outputs (no gradient): compute it from `outputs`"
        ]
    try:
        loss.backward()
    except Exception as exc:  # noqa: BLE001
        return [f"backward() through {loss_name} and {head_name} failed with {error(exc)}"]
    return []


def _prediction_problems(spec: TaskSpec, outputs: Any) -> list[str]:
    """``predict`` (and the task's ``decode``) on the head's outputs."""
    import torch

    n_out, n_pred = spec.n_outputs, spec.n_predictions
    if spec.predict is None:  # the kind's activation keeps the shape; values in [0, 1)
        predictions = torch.rand(_BATCH, n_pred)
        return _check_decode(spec, predictions.numpy()) if spec.decode is not None else []
    try:
        predictions = spec.predict(outputs.detach().float()).float()
        if predictions.dim() == 1:
            predictions = predictions.unsqueeze(-1)
    except Exception as exc:  # noqa: BLE001
        return [
            f"predict raised {error(exc)} on head outputs {tuple(outputs.shape)}: it must map the head's "
            f"(B, {n_out}) raw outputs to ({_BATCH}, {n_pred}) predictions"
        ]
    if tuple(predictions.shape) != (_BATCH, n_pred):
        return [
            f"predict returned shape {tuple(predictions.shape)}, but kind {spec.kind!r} needs ({_BATCH}, {n_pred})"
        ]
    if spec.decode is not None:
        return _check_decode(spec, predictions.numpy())
    return []


def _check_decode(spec: TaskSpec, predictions: Any) -> list[str]:
    try:
        # a task that calibrates decodes with what it fitted: decode(predictions, calibration)
        frame = (
            spec.decode(predictions, {}) if spec.calibrate is not None else spec.decode(predictions)
        )
    except Exception as exc:  # noqa: BLE001
        return [
            f"decode raised {error(exc)} on predictions of shape {predictions.shape}: it takes (n, n_outputs)"
        ]
    if not hasattr(frame, "columns") or len(frame) != len(predictions):
        return [
            f"decode returned {short(frame)}: return a pandas DataFrame with one row per prediction"
        ]
    return []


def _dummy_labels(spec: TaskSpec, gen: Any) -> Any:
    import torch

    n_cols = len(spec.labels)
    if spec.kind == "regression":
        labels = torch.randn(_BATCH, n_cols, generator=gen)
    elif spec.kind == "multiclass":
        labels = (torch.arange(_BATCH) % len(spec.classes)).float().reshape(_BATCH, 1)
    else:  # binary, multilabel: 0/1
        labels = torch.randint(0, 2, (_BATCH, n_cols), generator=gen).float()
    labels[0, 0] = math.nan
    return labels


def _why_n_outputs(spec: TaskSpec) -> str:
    if spec.outputs is not None:
        return f"the spec sets outputs={spec.outputs}"
    if spec.kind == "multiclass":
        return f"one per class: {len(spec.classes)}"
    if spec.kind == "multilabel":
        return f"one per label column: {len(spec.labels)}"
    return f"a {spec.kind} task has 1"
