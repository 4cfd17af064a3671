"""Apply a task's derived features (:attr:`TaskSpec.derive`) to a frame, with errors that name the task.

Pandas only (no torch): the plugin test kit checks derived columns too.
"""

from __future__ import annotations

import pandas as pd
from shopmtl.registry.spec import TaskSpec


def with_derived(spec: TaskSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus the task's derived feature columns (:attr:`TaskSpec.derive`), if any."""
    if spec.derive is None:
        return frame
    try:
        derived = spec.derive.compute(frame)
    except Exception as error:
        raise ValueError(
            f"task '{spec.name}': its derive.compute failed on {len(frame):,} rows: "
            f"{type(error).__name__}: {error}"
        ) from error
    wrong = sorted(set(spec.derive.columns) ^ set(getattr(derived, "columns", ())))
    if wrong or len(derived) != len(frame):
        raise ValueError(
            f"task '{spec.name}': derive.compute must return one row per input row with exactly the "
            f"columns {list(spec.derive.columns)}; it returned {len(derived)} rows, columns off by {wrong}"
        )
    return frame.assign(**{c: derived[c].to_numpy() for c in spec.derive.columns})
