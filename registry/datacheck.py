"""Deprecated path: the checks of a task's data values live in :mod:`shopmtl.core.data.valuecheck`.

Every row of every split is checked by :func:`shopmtl.core.data.checks.check_splits`, the one
check ``shopmtl plugins check`` and ``train`` share; ``check_frame`` still resolves here, with a
DeprecationWarning naming the new import. The home module is named by string and imported
when the old name is used, so the registry itself imports nothing from ``core``.
"""

from shopmtl.registry.deprecation import moved_names

__getattr__ = moved_names(__name__, "shopmtl.core.data.valuecheck", names={"check_frame"})
