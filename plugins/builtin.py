"""The built-in task plugins, listed for the composition root to register.

They are ordinary plugins: ``core/cli/common.py`` (or any other entry point) hands each module to
the plugin manager exactly as it would a third-party one, e.g.
``for name, module in BUILTIN_PLUGINS: pm.register(module, name=name)``. The registry
never imports ``shopmtl.plugins`` itself.
"""

from __future__ import annotations

from types import ModuleType

from shopmtl.plugins import price_bin, recommend, sales, user_profile

#: ``(plugin name, module)`` in registration order; each module implements ``register_tasks``.
BUILTIN_PLUGINS: tuple[tuple[str, ModuleType], ...] = (
    ("sales", sales),
    ("price_bin", price_bin),
    ("user_profile", user_profile),
    ("recommend", recommend),
)

__all__ = ["BUILTIN_PLUGINS"]
