"""Request schemas generated from each task's inputs, so ``/docs`` shows every field.

A row of task T holds T's text (and text pair), numeric and categorical inputs:
texts are strings, numerics finite numbers or ``null`` (missing), categoricals strings
or integers; its key columns (identifiers) may be given. Columns a task derives itself
are not asked for; other fields are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from shopmtl.registry.spec import TaskSpec

FiniteNumber = Annotated[float | None, Field(allow_inf_nan=False)]
Category = str | int | None
Key = str | int | None


def input_columns(spec: TaskSpec) -> list[str]:
    """The columns ``predict`` reads for ``spec``: keys and inputs (not labels or derived columns)."""
    return [c for c in spec.columns if c not in spec.labels]


def _fields(specs: Iterable[TaskSpec]) -> dict[str, tuple[Any, bool, str]]:
    """Column -> (type, required, description) for rows of ``specs``."""
    fields: dict[str, tuple[Any, bool, str]] = {}
    for spec in specs:
        derived = set(spec.derive.columns) if spec.derive else set()
        for column in spec.keys:
            fields.setdefault(
                column, (Key, False, f"identifier, not read by the model ({spec.name})")
            )
        for column in (spec.text, spec.text_pair):
            if column:
                fields[column] = (str, True, f"text read by the encoder ({spec.name})")
        for column in spec.numeric:
            if column not in derived:
                fields[column] = (
                    FiniteNumber,
                    True,
                    f"finite number; null = missing ({spec.name})",
                )
        for column in spec.categorical:
            if column not in derived:
                fields.setdefault(
                    column, (Category, False, f"category; null or absent = unknown ({spec.name})")
                )
    return fields


def row_model(name: str, specs: Sequence[TaskSpec]) -> type[BaseModel]:
    """A pydantic model of one input row for ``specs`` (several tasks: the union of their inputs).

    Python names are ``f0``, ``f1``...; the JSON names (aliases) are the column names,
    which need not be identifiers (``Customer ID``).
    """
    fields = {
        f"f{i}": (kind, Field(... if required else None, alias=column, description=description))
        for i, (column, (kind, required, description)) in enumerate(_fields(specs).items())
    }
    config = ConfigDict(extra="ignore", title=name)
    return create_model(name, __config__=config, **fields)  # type: ignore[call-overload]


def _rows_field(max_rows: int) -> Any:
    """``rows``: at most ``max_rows`` (declared as ``maxItems``; the server answers 413 past it)."""
    # Declared, not enforced by pydantic: a request over the cap is a 413 (too large), not a 422.
    return Field(description="the rows to predict", json_schema_extra={"maxItems": max_rows})


def request_model(task: str, row: type[BaseModel], max_rows: int) -> type[BaseModel]:
    """``{"rows": [row, ...]}`` for ``task``."""
    title = "".join(part.title() for part in task.split("_"))
    return create_model(f"{title}Request", rows=(list[row], _rows_field(max_rows)))


def multi_task_request(tasks: Sequence[str], max_rows: int) -> type[BaseModel]:
    """``POST /v1/predict``: several of ``tasks`` on the same rows (each row holds every task's inputs).

    The task names are an enum of the served tasks, so the document says which exist. The rows
    are checked against the tasks named once those are known, so they are objects here.
    """
    names = Literal[tuple(tasks)]  # type: ignore[valid-type]
    return create_model(
        "MultiTaskRequest",
        __config__=ConfigDict(extra="forbid"),
        tasks=(
            list[names],
            Field(min_length=1, description="tasks to predict, each text encoded once for all"),
        ),
        rows=(list[dict[str, Any]], _rows_field(max_rows)),
    )


class Predictions(BaseModel):
    """Prediction columns per row, in the order of the request's rows."""

    model: str = Field(
        description="run name and the first 12 hex digits of the sha256 of its weights"
    )
    predictions: list[dict[str, Any]]


def rows_as_records(rows: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """Validated rows as plain dicts keyed by column name."""
    return [row.model_dump(by_alias=True) for row in rows]
