"""Deprecated (0.1's path): ``from shopmtl import retail`` -- the same loader, moved to ``plugins/shared/``.

Every name still resolves here, with a DeprecationWarning naming the new import, until shopmtl 0.3.0.
"""

from shopmtl.registry.deprecation import moved_names

__getattr__ = moved_names(
    __name__, "shopmtl.plugins.shared.retail", instead="from shopmtl import retail"
)
