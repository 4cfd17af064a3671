"""A plugin of broken tasks, one fault each, on the toy data of ``tests/toy_tasks.py``.

Each task is what a plugin author gets wrong: a typo in a column name, labels that are
words, an impossible label, an input that overflowed, a metric that cannot be computed,
a metric that crashes, a classical prior that cannot be fitted.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from shopmtl import BuildContext, EvalBatch, Prior, TaskData, hookimpl
from toy_tasks import TOY_BINARY, TOY_REGRESSION, build


def build_with_typo(ctx: BuildContext) -> TaskData:
    data = build(ctx)
    data.splits["train"]["review"] = data.splits["train"][
        "reveiw"
    ]  # the typo a user meets: KeyError 'reveiw'
    return data


def build_word_labels(ctx: BuildContext) -> TaskData:
    data = build(ctx)
    for frame in data.splits.values():
        frame["flag"] = np.where(frame["flag"] > 0, "yes", "no")
    return data


def build_label_two(ctx: BuildContext) -> TaskData:
    data = build(ctx)
    data.splits["train"].loc[3, "flag"] = 2.0
    return data


def build_infinite_input(ctx: BuildContext) -> TaskData:
    data = build(ctx)
    data.splits["train"].loc[[5, 9], "x"] = (
        np.inf
    )  # a price near 1e308 times a quantity overflows to inf
    return data


def metrics_without_value(batch: EvalBatch) -> dict[str, float]:
    return {"auc": float("nan"), "accuracy": 0.5}  # NaN: the plugin could not compute it


def metrics_that_crash(batch: EvalBatch) -> dict[str, float]:
    positives = 0
    return {"auc": 1 / positives, "accuracy": 0.5}


def prior_that_crashes(train, val):
    return len(train) / 0


def _task(base, name: str, **changes):
    return dataclasses.replace(base, name=name, **changes)


TASKS = (
    _task(TOY_REGRESSION, "typo_value", build_dataset=build_with_typo),
    _task(TOY_BINARY, "word_flag", build_dataset=build_word_labels),
    _task(TOY_BINARY, "two_flag", build_dataset=build_label_two),
    _task(TOY_REGRESSION, "inf_value", build_dataset=build_infinite_input),
    _task(TOY_BINARY, "nan_flag", metrics=metrics_without_value),
    _task(TOY_BINARY, "crash_flag", metrics=metrics_that_crash),
    _task(
        TOY_REGRESSION,
        "prior_value",
        priors={
            "broken": Prior(
                "fit divides by zero",
                fit=prior_that_crashes,
                predict=lambda fitted, frame: frame["x"],
            )
        },
    ),
)


@hookimpl
def register_tasks(register):
    for task in TASKS:
        register(task)


__all__ = ["TASKS", "register_tasks"]
