"""Metric values as table cells, and plain-text tables of metrics for the terminal."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from shopmtl.registry.spec import TaskSpec


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def render_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell."""
    cells = [list(map(str, header))] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def scalar_metrics(spec: TaskSpec) -> list[str]:
    """The task's comparable metrics (``info`` ones, like a confusion matrix, left out)."""
    return [name for name, direction in spec.metric_directions.items() if direction != "info"]


def metrics_table(
    specs: Mapping[str, TaskSpec],
    model_metrics: Mapping[str, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    label: str = "shopmtl",
) -> str:
    """One block per task: the model's row, then each baseline's, over the task's metrics."""
    blocks = []
    for name, spec in specs.items():
        if name not in model_metrics:
            continue
        columns = scalar_metrics(spec)
        arrows = [f"{c} {'↑' if spec.metric_directions[c] == 'max' else '↓'}" for c in columns]
        rows = [[label, *(model_metrics[name].get(c) for c in columns)]]
        for baseline, values in (baselines or {}).get(name, {}).items():
            rows.append([f"baseline: {baseline}", *(values.get(c) for c in columns)])
        blocks.append(f"{name} ({spec.kind})\n" + render_table(["model", *arrows], rows))
    return "\n\n".join(blocks)


def finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def scalar_metric_names(spec: TaskSpec | None, samples: Sequence[Mapping[str, Any]]) -> list[str]:
    """The task's comparable metrics: its declared non-``info`` ones, else every number seen."""
    if spec is not None:
        return [m for m, d in spec.metric_directions.items() if d != "info"]
    names: list[str] = []
    for sample in samples:
        names += [m for m, v in sample.items() if finite_number(v) is not None and m not in names]
    return names
