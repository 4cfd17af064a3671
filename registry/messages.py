"""Wording shared by the registration checks: every problem is one sentence a plugin author can act on."""

from __future__ import annotations

import difflib
from typing import Any


def choices(options: Any) -> str:
    """``'a', 'b'``: the valid options, quoted."""
    return ", ".join(repr(o) for o in options)


def did_you_mean(value: Any, options: Any) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or nothing."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def short(value: Any) -> str:
    """``repr(value)``, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def error(exc: BaseException) -> str:
    """``TypeError: message``."""
    return f"{type(exc).__name__}: {exc}"


def plugin_where(name: str, source: str, value: str | None, distribution: str | None) -> str:
    """``built-in plugin 'x'`` or ``plugin 'x' (entry point mod of dist)``: a plugin, for messages."""
    if source == "builtin":
        return f"built-in plugin {name!r}"
    return f"plugin {name!r} (entry point {value}" + (
        f" of {distribution})" if distribution else ")"
    )


def import_problem(
    exc: BaseException, name: str, value: str | None, distribution: str | None
) -> str:
    """Why a plugin could not be imported, and -- for an entry point (``value`` given) -- which
    line of which pyproject.toml declares it, so its author fixes the right line."""
    problem = f"could not be imported: {error(exc)}"
    if value is None:
        return problem
    return (
        f"{problem} -- check the entry point in {distribution or 'the plugin'}'s pyproject.toml: "
        f'[project.entry-points.shopmtl] {name} = "{value}" must name an importable module'
    )
