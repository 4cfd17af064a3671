"""The report's HTML tables: each task's metrics beside its baselines, and the overview."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from shopmtl.core.report.tables import finite_number, scalar_metric_names
from shopmtl.registry.spec import TaskSpec


def _cell(value: Any) -> str:
    number = finite_number(value)
    if number is not None:
        return f"{number:.4f}"
    return "–" if value is None else html.escape(str(value))


def _best(values: Sequence[float | None], direction: str | None) -> float | None:
    present = [v for v in values if v is not None]
    if not present or direction not in ("max", "min"):
        return None
    return max(present) if direction == "max" else min(present)


def metrics_table_html(
    name: str,
    spec: TaskSpec | None,
    model: Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]],
    split: str,
) -> str:
    """The task's metrics on ``split``: the model's row, then each baseline's; best per column in bold."""
    columns = scalar_metric_names(spec, [model, *baselines.values()])
    directions = dict(spec.metric_directions) if spec is not None else {}
    rows = [(f"shopmtl model ({split})", model, "model")]
    rows += [(f"baseline: {b}", values, "baseline") for b, values in baselines.items()]
    best = {
        c: _best([finite_number(values.get(c)) for _, values, _ in rows], directions.get(c))
        for c in columns
    }
    arrow = {"max": " ↑", "min": " ↓"}
    head = "".join(
        f"<th>{html.escape(c)}{arrow.get(directions.get(c, ''), '')}</th>" for c in columns
    )
    body = []
    for label, values, kind in rows:
        cells = []
        for c in columns:
            number = finite_number(values.get(c))
            bold = number is not None and best[c] is not None and number == best[c]
            cells.append(f'<td class="num{" best" if bold else ""}">{_cell(values.get(c))}</td>')
        body.append(
            f'<tr class="{kind}"><th scope="row">{html.escape(label)}</th>{"".join(cells)}</tr>'
        )
    return (
        f'<table class="metrics" data-task="{html.escape(name)}"><thead><tr><th>model</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def overview_table_html(
    names: Sequence[str],
    specs: Mapping[str, TaskSpec],
    by_task: Mapping[str, Any],
    baselines: Mapping[str, Any],
    split: str,
) -> str:
    """One row per task: its primary metric for the model and for its best baseline."""
    body = []
    for name in names:
        spec = specs.get(name)
        model = by_task.get(name, {}).get(split, {})
        metric = (
            spec.primary_metric
            if spec is not None
            else next(iter(scalar_metric_names(None, [model])), None)
        )
        direction = spec.metric_directions.get(metric) if spec is not None else None
        value = finite_number(model.get(metric)) if metric else None
        candidates = (
            [(b, finite_number(v.get(metric))) for b, v in baselines.get(name, {}).items()]
            if metric
            else []
        )
        candidates = [(b, v) for b, v in candidates if v is not None]
        best_name, best_value, verdict = "–", None, ""
        if candidates and direction in ("max", "min"):
            best_name, best_value = (max if direction == "max" else min)(
                candidates, key=lambda bv: bv[1]
            )
            if value is not None:
                ahead = value > best_value if direction == "max" else value < best_value
                verdict = (
                    '<span class="ahead">model ahead</span>'
                    if ahead
                    else '<span class="behind">baseline ahead</span>'
                )
        arrow = {"max": " ↑", "min": " ↓"}.get(direction or "", "")
        body.append(
            f'<tr><th scope="row"><a href="#task-{html.escape(name)}">{html.escape(name)}</a></th>'
            f"<td>{html.escape(spec.kind) if spec else '?'}</td><td>{html.escape(str(metric))}{arrow}</td>"
            f'<td class="num">{_cell(value)}</td><td>{html.escape(best_name)}</td>'
            f'<td class="num">{_cell(best_value)}</td><td>{verdict}</td></tr>'
        )
    return (
        '<table class="overview"><thead><tr><th>task</th><th>kind</th><th>primary metric</th><th>model</th>'
        "<th>best baseline</th><th>its value</th><th></th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )
