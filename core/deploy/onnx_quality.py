"""How an exported ONNX model's predictions compare with the run's PyTorch model.

Two checks, on the run's test rows, both engines in float32 arithmetic on CPU through the
same :class:`~shopmtl.core.engine.evaluate.Scorer` code:

* :func:`max_abs_difference` -- the largest difference of any prediction (a float32 graph
  must match PyTorch to ``1e-3``);
* :func:`primary_metric_changes` -- each task's primary metric from both engines over the
  whole test split (an int8 graph changes the numbers; what matters is the metric).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from shopmtl.core.data.prepare import PreparedTask, prepare_task
from shopmtl.core.deploy.fp32 import Fp32Runtime
from shopmtl.core.engine.evaluate import Scorer, evaluate
from shopmtl.core.engine.predict import LoadedRun

#: An int8 export may move no task's primary metric on the test rows by more than this.
MAX_METRIC_CHANGE = 0.005


@dataclass(frozen=True)
class MetricChange:
    """One task's primary metric on the test split, PyTorch (float32) against ONNX."""

    task: str
    metric: str
    torch: float | None
    onnx: float | None

    @property
    def change(self) -> float:
        """``onnx - torch``: 0 when both are undefined on these rows, NaN when one is."""
        if self.torch is None and self.onnx is None:
            return 0.0
        if self.torch is None or self.onnx is None:
            return float("nan")
        return self.onnx - self.torch

    def as_dict(self) -> dict[str, Any]:
        change = None if np.isnan(self.change) else self.change
        return {"metric": self.metric, "torch": self.torch, "onnx": self.onnx, "change": change}


def rebuilt_tasks(run: LoadedRun) -> dict[str, PreparedTask]:
    """The run's tasks with their splits rebuilt by the run's settings and saved features."""
    return {
        name: prepare_task(spec, run.config, run.bank, state=run.features[name])
        for name, spec in run.specs.items()
    }


@contextmanager
def torch_on_cpu(run: LoadedRun) -> Iterator[Any]:
    """``run.model`` on CPU in eval mode for the block, then back where it was."""
    was = next(run.model.parameters()).device
    try:
        yield run.model.cpu().eval()
    finally:
        run.model.to(was).eval()


def max_abs_difference(
    run: LoadedRun, onnx_model: Any, tasks: Mapping[str, PreparedTask], max_rows: int = 512
) -> float:
    """Largest absolute difference between the predictions of the two engines on up to
    ``max_rows`` test rows of each task."""
    runtime, size = Fp32Runtime(), run.config.training.eval_batch_size
    worst = 0.0
    with torch_on_cpu(run) as model:
        torch_scorer = Scorer(runtime, model, run.bank, size)  # type: ignore[arg-type]
        onnx_scorer = Scorer(runtime, onnx_model, run.bank, size)  # type: ignore[arg-type]
        for prepared in tasks.values():
            rows = prepared.rows["test"]
            index = np.arange(min(len(rows), max_rows))
            expected = torch_scorer.predict_rows(prepared, rows, index)
            got = onnx_scorer.predict_rows(prepared, rows, index)
            worst = max(worst, float(np.abs(expected - got).max(initial=0.0)))
    return worst


def split_metrics(run: LoadedRun, model: Any, tasks: Mapping[str, PreparedTask]) -> dict[str, Any]:
    """``{task: {metric: value}}`` of ``model`` (the run's or an :class:`OnnxModel`) on the
    test split, in float32, with the run's calibration."""
    size = run.config.training.eval_batch_size
    return evaluate(
        Fp32Runtime(),  # type: ignore[arg-type]
        model,
        run.bank,
        tasks,
        "test",
        size,
        calibration=run.calibration,
    )


def primary_metric_changes(
    run: LoadedRun, onnx_model: Any, tasks: Mapping[str, PreparedTask]
) -> list[MetricChange]:
    """Each task's primary metric on its whole test split from PyTorch and from ``onnx_model``."""
    with torch_on_cpu(run) as model:
        reference = split_metrics(run, model, tasks)
    got = split_metrics(run, onnx_model, tasks)
    changes = []
    for name, prepared in tasks.items():
        metric = prepared.spec.primary_metric
        changes.append(
            MetricChange(name, metric, reference[name].get(metric), got[name].get(metric))
        )
    return changes


def too_large(changes: list[MetricChange], limit: float) -> list[MetricChange]:
    """The changes beyond ``limit`` (an undefined metric cannot be checked: it counts as beyond)."""
    return [c for c in changes if not abs(c.change) <= limit]
