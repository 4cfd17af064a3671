"""Deprecated (0.1's path): the task contract is public as ``from shopmtl import TaskSpec, MetricSpec, ...``.

It is defined in :mod:`shopmtl.registry.spec` now; every name still resolves here, with
a DeprecationWarning naming the new import, until shopmtl 0.3.0.
"""

from shopmtl.registry.deprecation import moved_names

# Names importable from `shopmtl` itself (tests/test_public_api.py checks they are).
PUBLIC = frozenset(
    {
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
        "Register",
        "SamplerFactory",
        "SharingFactory",
        "TaskData",
        "TaskSpec",
    }
)

__getattr__ = moved_names(__name__, "shopmtl.registry.spec", public=PUBLIC)
