"""Checks on one plugin's hook implementations before shopmtl trusts it: the hook API
version it declares, unknown or wrapper hooks, and deprecated hooks (named by plugin)."""

from __future__ import annotations

import difflib
import warnings

import pluggy
from shopmtl.registry.hookspecs import HOOK_API_VERSION


def warn_deprecated_hooks(pm: pluggy.PluginManager, plugin: object, where: str) -> None:
    """Name the plugin when it implements a hook whose spec carries ``warn_on_impl``.

    pluggy itself warns at the implementing function; this says which plugin it is,
    which is what a person reading a run's log needs.
    """
    for caller in pm.get_hookcallers(plugin) or ():
        deprecation = caller.spec.warn_on_impl if caller.spec is not None else None
        if deprecation is not None:
            warnings.warn(
                f"shopmtl {where} implements deprecated hook {caller.name}: {deprecation}",
                DeprecationWarning,
                stacklevel=3,
            )


def check_hook_api(plugin: object) -> str | None:
    declared = getattr(plugin, "SHOPMTL_HOOK_API", None)
    if declared is None:
        return None
    ours = HOOK_API_VERSION.split(".")[0]
    theirs = str(declared).split(".")[0]
    if not theirs.isdigit():
        return f"declares SHOPMTL_HOOK_API = {declared!r}, which is not a version: write e.g. SHOPMTL_HOOK_API = '1.0'"
    if theirs != ours:
        return (
            f"was written for shopmtl hook API {declared}, but this shopmtl provides hook API {HOOK_API_VERSION}: "
            f"install a version of the plugin made for hook API {ours}.x, or a shopmtl that provides {declared}"
        )
    return None


def check_hooks(pm: pluggy.PluginManager, plugin: object, hooks: list[str]) -> str | None:
    known = [name for name, caller in vars(pm.hook).items() if caller.has_spec()]
    unknown = [
        h
        for h in hooks
        if h not in known  # optionalhook=True: a hook of a newer shopmtl, fine to ignore
        and not all(
            i.optionalhook for i in getattr(pm.hook, h).get_hookimpls() if i.plugin is plugin
        )
    ]
    if unknown:
        hints = "".join(
            f" (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(h, known, n=1))
            else ""
            for h in unknown[:1]
        )
        return (
            f"implements unknown hook(s) {', '.join(map(repr, unknown))}{hints}: shopmtl's hooks are "
            f"{', '.join(sorted(known))}"
        )
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper):
                return f"declares {caller.name} as a wrapper: shopmtl's hooks are plain calls -- drop wrapper=True"
    if not hooks:
        return (
            "implements no shopmtl hook: decorate its functions with @shopmtl.hookimpl, and point the entry "
            "point at the module that defines them"
        )
    return None
