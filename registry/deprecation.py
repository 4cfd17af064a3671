"""Import paths of shopmtl 0.1 that keep working until 0.3.0, with a DeprecationWarning.

The version policy (CHANGELOG.md): a public path deprecated in release 0.N keeps working, with
a warning naming the new import, until 0.(N+1).0 removes it (``REMOVED_IN``). The 0.1 paths
were first deprecated in a release in 0.2.0.

A module whose names moved replaces them with a module-level ``__getattr__`` built here
(PEP 562): the old import still returns the same object, and the warning says which
import to write instead. Nothing here runs for code that already uses the new paths.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any

#: The release that drops the old paths.
REMOVED_IN = "0.3.0"


def moved_names(
    old: str,
    home: str,
    public: Collection[str] = (),
    names: Collection[str] | None = None,
    instead: str | None = None,
) -> Callable[[str], Any]:
    """A ``__getattr__`` for module ``old`` that serves names now defined in module ``home``.

    :param public: names importable from ``shopmtl`` itself: the warning points there.
    :param names: the names that moved (default: every public name of ``home``).
    :param instead: the replacement to name for every attribute (e.g. ``from shopmtl import retail``).
    """

    def __getattr__(name: str) -> Any:
        target = importlib.import_module(home)
        if (
            name.startswith("__")
            or (names is not None and name not in names)
            or not hasattr(target, name)
        ):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        new = instead or f"from {'shopmtl' if name in public else home} import {name}"
        warnings.warn(
            f"{old}.{name} is deprecated and goes away in shopmtl {REMOVED_IN}: use `{new}`",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(target, name)

    return __getattr__


def moved_to(
    old: str, homes: Mapping[str, Collection[str]], public: Collection[str] = ()
) -> Callable[[str], Any]:
    """A ``__getattr__`` for module ``old`` whose names moved to several modules.

    :param homes: new module -> the names it now defines.
    :param public: names importable from ``shopmtl`` itself: the warning points there.
    """
    getters = {
        name: moved_names(old, home, public, names)
        for home, names in homes.items()
        for name in names
    }

    def __getattr__(name: str) -> Any:
        if name not in getters:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        return getters[name](name)

    return __getattr__
