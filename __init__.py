"""shopmtl: plugin-based multi-task modelling for e-commerce on one shared text encoder.

Plugin authors need only two names from here::

    from shopmtl import hookimpl, TaskSpec

Everything else lives in :mod:`shopmtl.registry` (the plugin contract) and
:mod:`shopmtl.core` (the engine).
"""

from shopmtl.registry.contract import (
    BuildContext,
    DerivedFeatures,
    EvalBatch,
    HeadSpec,
    TaskData,
    TaskSpec,
)
from shopmtl.registry.hookspecs import HOOK_API_VERSION, hookimpl

from shopmtl.registry.version import __version__

__all__ = [
    "HOOK_API_VERSION",
    "BuildContext",
    "DerivedFeatures",
    "EvalBatch",
    "HeadSpec",
    "TaskData",
    "TaskSpec",
    "__version__",
    "hookimpl",
]
