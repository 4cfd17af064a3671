"""Request schemas generated from each task's inputs, so ``/docs`` shows every field.

A row of task T holds T's text (and text pair), numeric and categorical inputs:
texts are strings, numerics finite numbers or ``null`` (missing), categoricals strings
or integers; its key columns (identifiers) may be given. Columns a task derives itself
are not asked for; other fields are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, create_model
from shopmtl.registry.spec import TaskSpec

# Strict: JSON's `false` or `"2"` is not a number, nor `false` a category, as the document says
# (pydantic's lax mode would take them as 0.0, 2.0 and 0).
FiniteNumber = Annotated[float | None, Field(strict=True, allow_inf_nan=False)]
Category = StrictStr | StrictInt | None
Key = StrictStr | StrictInt | None


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
                fields[column] = (StrictStr, True, f"text read by the encoder ({spec.name})")
        for column in spec.numeric:
            if column not in derived:
                fields[column] = (
                    FiniteNumber,
                    False,  # a numeric input may be missing: null or absent alike
                    f"finite number; null or absent = missing ({spec.name})",
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
    """``rows``, its cap in the description: past ``max_rows`` the server answers 413.

    Not a ``maxItems``: that would say a longer list is malformed (a 400/422), while it is
    well formed and only too large for this server (413, as for too many bytes).
    """
    return Field(
        description=f"the rows to predict: at most {max_rows} (--max-rows); more are refused "
        "with 413 too_many_rows",
        json_schema_extra={"x-max-rows": max_rows},
    )


def request_model(task: str, row: type[BaseModel], max_rows: int) -> type[BaseModel]:
    """``{"rows": [row, ...]}`` for ``task``."""
    title = "".join(part.title() for part in task.split("_"))
    return create_model(f"{title}Request", rows=(list[row], _rows_field(max_rows)))


def multi_task_request(rows: Mapping[str, type[BaseModel]], max_rows: int) -> type[BaseModel]:
    """``POST /v1/predict``: several of the served tasks on the same rows.

    ``rows`` maps each served task to its row model. The task names are an enum, and the
    document says what the server checks: for each task named, every row holds that task's
    inputs (one ``if``/``then`` per task; JSON Schema as OpenAPI 3.1 has it).
    """
    names = Literal[tuple(rows)]  # type: ignore[valid-type]
    conditions = [
        {
            "if": {"properties": {"tasks": {"contains": {"const": task}}}, "required": ["tasks"]},
            "then": {"properties": {"rows": {"items": _inline(row)}}},
        }
        for task, row in rows.items()
    ]
    return create_model(
        "MultiTaskRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"allOf": conditions}),
        tasks=(
            list[names],
            Field(min_length=1, description="tasks to predict, each text encoded once for all"),
        ),
        rows=(list[dict[str, Any]], _rows_field(max_rows)),
    )


def _inline(row: type[BaseModel]) -> dict[str, Any]:
    """``row``'s JSON schema, self-contained (row models have no nested models to refer to)."""
    schema = row.model_json_schema(by_alias=True)
    schema.pop("title", None)
    return schema


class Predictions(BaseModel):
    """Prediction columns per row, in the order of the request's rows."""

    model: str = Field(
        description="run name and the first 12 hex digits of the sha256 of its weights"
    )
    predictions: list[dict[str, Any]]


def rows_as_records(rows: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """Validated rows as plain dicts keyed by column name."""
    return [row.model_dump(by_alias=True) for row in rows]
