"""Where the plugin loader's names come from: the selection, the environment, entry-point metadata.

:func:`shopmtl.registry.manager.load_plugins` asks here which entry points are selected
(``SHOPMTL_PLUGINS`` or ``only=``), whether strict mode is on (``SHOPMTL_STRICT_PLUGINS``),
and what a distribution's metadata says about a plugin -- without importing it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from shopmtl.registry.pluginset import ENV_PLUGINS, ENV_STRICT, PluginError, PluginReport
from shopmtl.registry.version import __version__

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def listed(ep: Any) -> PluginReport:
    """An entry point as its distribution's metadata describes it; its module is not imported."""
    dist = getattr(ep, "dist", None)
    return PluginReport(
        name=ep.name,
        version=version(None, dist, "entry point"),
        source="entry point",
        distribution=dist_name(dist),
        imported=False,
    )


def dist_name(dist: Any) -> str | None:
    """The distribution's name from its metadata (``None`` for a built-in)."""
    if dist is None:
        return None
    try:
        return dist.metadata["Name"] or getattr(dist, "name", None)
    except Exception:  # noqa: BLE001 -- broken metadata must not break loading
        return getattr(dist, "name", None)


def version(plugin: object, dist: Any, source: str) -> str:
    """A plugin's version: its distribution's, shopmtl's for a built-in, else its ``__version__``."""
    if dist is not None and getattr(dist, "version", None):
        return str(dist.version)
    if source == "builtin":
        return __version__
    return str(getattr(plugin, "__version__", None) or "unknown")


def names(names: Iterable[str] | str) -> set[str]:
    """Plugin names from an iterable, or from one comma-separated string."""
    if isinstance(names, str):
        names = names.split(",")
    return {str(n).strip() for n in names if str(n).strip()}


def selection(only: Iterable[str] | str | None) -> set[str] | None:
    """Entry-point names to load, or ``None`` for all of them."""
    if only is not None:
        return names(only)
    value = os.environ.get(ENV_PLUGINS)
    return None if value is None else names(value)


def strict_from_env() -> bool:
    value = os.environ.get(ENV_STRICT, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise PluginError(
        f"{ENV_STRICT}={os.environ[ENV_STRICT]!r} is not understood: set it to 1 (strict) or 0 (lenient), or unset it"
    )


def why_not(
    name: str,
    blocked: set[str],
    selected: set[str] | None,
    allowed: set[str] | None,
    by_env: bool,
) -> str | None:
    """Why entry point ``name`` is not loaded (blocked, not selected, not allowed), or ``None``."""
    if name in blocked:
        return "blocked"
    if selected is not None and name not in selected:
        return f"not selected by {ENV_PLUGINS if by_env else 'only='}"
    if allowed is not None and name not in allowed:
        return "not in plugins.allow"
    return None
