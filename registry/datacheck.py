"""What the values of a task's data must be: the checks ``plugins check`` and a run share.

A string in a label column trains the whole run with ``auc=None`` at every validation; an
infinite number in a numeric column turns the loss into NaN several steps later. Checking
the built frames once, before the first step, says what is wrong and where instead.
Light: pandas and numpy only, imported when called.
"""

from __future__ import annotations

from typing import Any

from shopmtl.registry.spec import TaskSpec

__all__ = ["check_frame"]

_EXAMPLES = 3  # offending values (and rows) quoted in a message


def check_frame(
    spec: TaskSpec, split: str, frame: Any, *, require_labels: bool = True
) -> list[str]:
    """Every problem with the types and values of one split's columns, each a sentence with the fix.

    Text columns hold text; numeric columns numbers, finite ones; label columns numbers that
    fit the task's kind. ``shopmtl plugins check`` and a training run (before its first
    step) both run it; a run passes ``require_labels=False``, since a task whose train
    labels are all missing still runs (it learns nothing), where ``plugins check`` warns.
    """
    return [
        *_text_problems(spec, split, frame),
        *_numeric_problems(spec, split, frame),
        *_label_problems(spec, split, frame, require_labels),
    ]


def _text_problems(spec: TaskSpec, split: str, frame: Any) -> list[str]:
    problems = []
    for column in (spec.text, *((spec.text_pair,) if spec.text_pair else ())):
        values = frame[column]
        bad = values[~values.map(lambda v: isinstance(v, str))]
        if len(bad):
            problems.append(
                f"text column {column!r} of the {split} split is not a string on {_count(bad, 'row')} "
                f"(e.g. {_examples(bad)}): the encoder needs text -- fill missing text with '' and convert "
                f"others with .astype(str)"
            )
    return problems


def _numeric_problems(spec: TaskSpec, split: str, frame: Any) -> list[str]:
    import numpy as np
    import pandas as pd

    problems = []
    for column in spec.numeric:
        bad = _non_numeric(frame[column])
        if len(bad):
            problems.append(
                f"numeric column {column!r} of the {split} split is not a number on {_count(bad, 'row')} "
                f"(e.g. {_examples(bad)}), {_rows(bad)}: those would silently become missing -- convert them, "
                "or list the column in categorical= instead"
            )
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        infinite = numbers[np.isinf(numbers)]
        if len(infinite):
            problems.append(
                f"numeric column {column!r} of the {split} split is infinite on {_count(infinite, 'row')} "
                f"({_rows(infinite)}): an input that overflowed (a value beyond float64) trains to NaN -- fix or "
                "drop those rows, or use NaN for a missing value"
            )
    return problems


def _label_problems(spec: TaskSpec, split: str, frame: Any, require_labels: bool) -> list[str]:
    import numpy as np
    import pandas as pd

    problems = []
    for column in spec.labels:
        values = frame[column]
        bad = _non_numeric(values)
        if len(bad):
            hint = " (the class index, not its name)" if spec.kind == "multiclass" else ""
            problems.append(
                f"label column {column!r} of the {split} split is not a number on {_count(bad, 'row')} "
                f"(e.g. {_examples(bad)}), {_rows(bad)}: labels must be numbers{hint}; use NaN for a missing label"
            )
            continue
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        present = numbers.dropna()
        if spec.kind == "regression":
            infinite = present[~np.isfinite(present)]
            if len(infinite):
                problems.append(
                    f"label column {column!r} of the {split} split is infinite on {_count(infinite, 'row')}: "
                    "use NaN for a missing label, and clip or transform (e.g. log1p) extreme values"
                )
        elif spec.kind in ("binary", "multilabel"):
            bad = present[~present.isin((0.0, 1.0))]
            if len(bad):
                problems.append(
                    f"label column {column!r} of the {split} split is not 0 or 1 on {_count(bad, 'row')} "
                    f"(e.g. {_examples(bad)}): a {spec.kind} label is 0, 1, or NaN when missing"
                )
        elif spec.kind == "multiclass":
            n = len(spec.classes)
            bad = present[(present != np.floor(present)) | (present < 0) | (present >= n)]
            if len(bad):
                problems.append(
                    f"label column {column!r} of the {split} split is not a class index 0..{n - 1} "
                    f"on {_count(bad, 'row')} (e.g. {_examples(bad)}): the label is the position of the class in "
                    f"classes={tuple(spec.classes)!r}"
                )
        if require_labels and split == "train" and len(values) and present.empty:
            problems.append(
                f"label column {column!r} of the train split is missing (NaN) on every row: the task cannot learn"
            )
    return problems


def _non_numeric(values: Any) -> Any:
    import pandas as pd

    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.iloc[:0]
    numbers = pd.to_numeric(values, errors="coerce")
    return values[numbers.isna() & values.notna()]


def _examples(values: Any) -> str:
    def show(value: Any) -> str:
        value = value.item() if hasattr(value, "item") else value
        if value is None or (isinstance(value, float) and value != value):
            return "NaN"  # None and NaN alike: pandas turns one into the other
        return _short(value)

    return ", ".join(list(dict.fromkeys(map(show, values)))[:_EXAMPLES])


def _count(items: Any, noun: str) -> str:
    n = len(items)
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rows(values: Any) -> str:
    """The first row labels of ``values`` (a Series), for a message."""
    shown = ", ".join(str(i) for i in list(values.index[:_EXAMPLES]))
    return (
        f"row {shown}"
        if len(values) == 1
        else f"rows {shown}" + (", ..." if len(values) > _EXAMPLES else "")
    )
