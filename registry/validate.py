"""Deprecated (0.1's path): ``from shopmtl import validate_task``.

The checks live in :mod:`shopmtl.registry.validation` now; the old names still resolve
here, with a DeprecationWarning naming the new import, until shopmtl 0.3.0.
"""

from shopmtl.registry.deprecation import moved_names

PUBLIC = frozenset({"validate_task"})  # importable from `shopmtl` itself

__getattr__ = moved_names(__name__, "shopmtl.registry.validation", public=PUBLIC)
