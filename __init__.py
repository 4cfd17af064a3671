"""shopmtl: plugin-based multi-task modelling for e-commerce on one shared text encoder.

This module is the whole public API for plugin authors (the test kit is
:mod:`shopmtl.testing`)::

    from shopmtl import BuildContext, EvalBatch, TaskData, TaskSpec, hookimpl

Everything else is shopmtl's own and may move between releases: the engine in
:mod:`shopmtl.core`, the plugin machinery in :mod:`shopmtl.registry`, the built-in
tasks in :mod:`shopmtl.plugins`.
"""

from __future__ import annotations

from typing import Any

from shopmtl.registry.decoding import decode_by_kind
from shopmtl.registry.hookspecs import HOOK_API_VERSION, RunInfo, hookimpl
from shopmtl.registry.metrics import log1p_regression_metrics
from shopmtl.registry.spec import (
    BuildContext,
    DerivedFeatures,
    EvalBatch,
    GradientSurgery,
    GradientSurgeryFactory,
    HeadInput,
    HeadSpec,
    LossWeightingFactory,
    MetricSpec,
    Prior,
    PriorState,
    Register,
    SamplerFactory,
    SharingFactory,
    TaskData,
    TaskSpec,
)
from shopmtl.registry.validation import validate_task
from shopmtl.registry.version import __version__

__all__ = [
    "HOOK_API_VERSION",
    "BuildContext",
    "DerivedFeatures",
    "EvalBatch",
    "GradientSurgery",
    "GradientSurgeryFactory",
    "HeadInput",
    "HeadSpec",
    "LossWeightingFactory",
    "MetricSpec",
    "Prior",
    "PriorState",
    "Register",
    "RunInfo",
    "SamplerFactory",
    "SharingFactory",
    "TaskData",
    "TaskSpec",
    "__version__",
    "decode_by_kind",
    "hookimpl",
    "log1p_regression_metrics",
    "retail",
    "split_batches",
    "split_chunks",
    "split_columns",
    "split_files",
    "split_frame",
    "split_length",
    "validate_task",
]

#: Helpers that read a split as a plugin hands it over (a frame, Arrow, Parquet files): the
#: ones shopmtl's own check and training use, public so a builder or a test reads alike.
SPLIT_HELPERS = frozenset(
    {"split_batches", "split_chunks", "split_columns", "split_files", "split_frame", "split_length"}
)


def __getattr__(name: str) -> Any:
    # `retail` (the Online Retail loader the built-in tasks use) imports pandas: loaded on
    # first use, so `import shopmtl` stays light.
    if name == "retail":
        from shopmtl.plugins.shared import retail

        return retail
    if name in SPLIT_HELPERS:  # numpy (and pandas when called): loaded on first use too
        from shopmtl.registry import splits

        return getattr(splits, name)
    raise AttributeError(f"module 'shopmtl' has no attribute {name!r}")
