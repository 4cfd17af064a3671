"""Load shopmtl's plugins one at a time, so one broken plugin never takes the others down.

The composition root (the CLI) calls :func:`load_plugins` once, handing it the
built-in task modules as plain ``(name, module)`` pairs -- the registry never imports
:mod:`shopmtl.plugins` itself. Third-party plugins come from the ``shopmtl``
entry-point group of installed distributions::

    plugins = load_plugins([("sales", sales), ("price_bin", price_bin)])
    plugins.tasks            # {"sales": TaskSpec(...), ...}, valid tasks only
    plugins.reports          # one PluginReport per plugin tried, errors included
    plugins.notify("on_run_start", run=run_info)

Each plugin goes through the same steps, and a failure at any step skips *that
plugin* (its hooks and all its tasks) with a :class:`PluginWarning` naming it, the
error, and how to fix or disable it; the others keep loading:

1. import it (entry points only: ``ep.load()``);
2. check ``SHOPMTL_HOOK_API`` if the module declares one (same major as
   :data:`~shopmtl.registry.hookspecs.HOOK_API_VERSION`);
3. register it with pluggy (unknown hook names and unknown arguments are refused);
4. call its ``register_tasks`` alone, validating each task as it is registered
   (:func:`~shopmtl.registry.validation.validate_task`, unique task names).

A plugin is all-or-nothing: when one of its tasks is invalid, none of them is kept,
so a run never trains half of a plugin.

Selection, blocking and strictness:

* ``SHOPMTL_PLUGINS`` (environment): unset -> every installed entry point;
  ``"a,b"`` -> only the entry points named ``a`` and ``b``; ``""`` -> none, only the
  built-ins. The ``only=`` argument, when given, replaces the variable.
  Built-ins are always loaded unless blocked.
* ``allow=`` (the config's ``plugins.allow``): entry-point names that may load, beside
  ``SHOPMTL_PLUGINS``; an entry point must pass both. ``None`` allows any.
* ``blocked=`` names (built-in or entry point) are not loaded at all, like
  pytest's ``-p no:NAME``.
* ``import_entry_points=False`` lists the selected entry points from their
  distributions' metadata without importing them (``shopmtl plugins``): installing a
  package is trusting its code, but listing it should not run it.
* Strict mode turns every skipped plugin (and every failing observer hook, and every
  name in the selection that matches no installed plugin) into a :class:`PluginError`.
  It is on when ``strict=True`` is passed *or* ``SHOPMTL_STRICT_PLUGINS`` is set to
  ``1``/``true``/``yes``/``on``; either one suffices, neither can switch the other off
  (``0``/``false``/``no``/``off``/empty leave the argument in charge; any other
  value is a :class:`PluginError`, so a typo cannot silently turn strictness off).

Call observer hooks through :meth:`PluginSet.notify`, not ``pm.hook.on_...(...)``:
pluggy's own call stops at the first plugin that raises.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pluggy
from shopmtl.registry import hookspecs
from shopmtl.registry.entrypoints import dist_name as _dist_name
from shopmtl.registry.entrypoints import listed as _listed
from shopmtl.registry.entrypoints import names as _names
from shopmtl.registry.entrypoints import selection as _selection
from shopmtl.registry.entrypoints import strict_from_env as _strict_from_env
from shopmtl.registry.entrypoints import version as _version
from shopmtl.registry.entrypoints import why_not as _why_not
from shopmtl.registry.hookcheck import check_hook_api, check_hooks, warn_deprecated_hooks
from shopmtl.registry.hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME
from shopmtl.registry.messages import import_problem, plugin_where
from shopmtl.registry.pluginset import (  # re-exported: the loader's public API names them
    ENV_PLUGINS,
    ENV_STRICT,
    OBSERVER_HOOKS,
    PluginError,
    PluginReport,
    PluginSet,
    PluginWarning,
    how_to_disable,
)
from shopmtl.registry.spec import MetricSpec, TaskSpec
from shopmtl.registry.validation import validate_task

__all__ = [
    "ENV_PLUGINS",
    "ENV_STRICT",
    "OBSERVER_HOOKS",
    "PluginError",
    "PluginReport",
    "PluginSet",
    "PluginWarning",
    "load_plugins",
]


def load_plugins(
    builtins: Sequence[tuple[str, object]],
    *,
    strict: bool = False,
    blocked: Iterable[str] = (),
    only: Iterable[str] | None = None,
    entry_points: Iterable[Any] | None = None,
    allow: Iterable[str] | None = None,
    import_entry_points: bool = True,
) -> PluginSet:
    """Register the built-ins, then each selected entry-point plugin, one at a time.

    :param builtins: ``(name, module)`` pairs, shopmtl's own plugins, loaded first. The
        engine passes its strategies (:mod:`shopmtl.core.mtl.builtin`, named ``shopmtl``,
        never blocked) before the built-in tasks; the registry itself imports neither.
    :param strict: raise :class:`PluginError` instead of skipping a broken plugin
        (also switched on by ``SHOPMTL_STRICT_PLUGINS=1``).
    :param blocked: plugin names (built-in or entry point) not to load, or one
        comma-separated string; blocking wins over selection.
    :param only: entry-point names to load (or one comma-separated string); replaces
        ``SHOPMTL_PLUGINS``. ``None`` reads the variable; empty loads built-ins only.
    :param entry_points: entry-point objects (``name``, ``value``, ``load()``,
        optional ``dist``) to use instead of the installed ``shopmtl`` group (tests).
    :param allow: entry-point names that may load (``plugins.allow``), on top of the selection.
    :param import_entry_points: ``False``: report selected entry points from metadata, unimported.
    :returns: the :class:`PluginSet`; broken plugins appear in ``reports`` with ``error``.
    """
    strict = strict or _strict_from_env()
    blocked = _names(blocked)
    selected = _selection(only)
    allowed = None if allow is None else _names(allow)
    builtin_names = {name for name, _ in builtins}

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    result = PluginSet(pm=pm, strict=strict)
    loader = _Loader(result, strict)

    for name, module in builtins:
        if name in blocked and name != PROJECT_NAME:  # shopmtl's own strategies stay
            result.skipped[name] = "blocked"
            pm.set_blocked(name)
            continue
        loader.load(name, lambda module=module: module, source="builtin", dist=None)

    eps = list(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if entry_points is None
        else entry_points
    )
    seen: dict[str, str] = {}
    for ep in eps:
        if ep.name in seen and seen[ep.name] == ep.value:
            continue  # the same distribution found twice on sys.path
        seen[ep.name] = ep.value
        why = _why_not(ep.name, blocked, selected, allowed, by_env=only is None)
        if why is not None:
            result.skipped[ep.name] = why
            if why == "blocked":
                pm.set_blocked(ep.name)
            continue
        if not import_entry_points:
            result.reports.append(_listed(ep))
            continue
        loader.load(
            ep.name, ep.load, source="entry point", dist=getattr(ep, "dist", None), value=ep.value
        )

    if selected:
        missing = sorted(selected - set(seen) - builtin_names)  # built-ins always load
        if missing:
            installed = ", ".join(sorted(seen)) or "none"
            loader.fail(
                f"{ENV_PLUGINS if only is None else 'only='} names {', '.join(map(repr, missing))}, but no "
                f"installed plugin has that name (installed entry points: {installed}): fix the name, or "
                f"pip install the plugin's distribution"
            )
    return result


# --------------------------------------------------------------------------- internals


class _Loader:
    """Takes one plugin through import, checks, registration and its tasks."""

    def __init__(self, result: PluginSet, strict: bool) -> None:
        self.result = result
        self.strict = strict

    def fail(self, message: str, cause: BaseException | None = None) -> None:
        if self.strict:
            raise PluginError(message) from cause
        warnings.warn(message, PluginWarning, stacklevel=2)

    def load(
        self,
        name: str,
        importer: Callable[[], object],
        *,
        source: str,
        dist: Any,
        value: str | None = None,
    ) -> None:
        dist_name = _dist_name(dist)
        report = PluginReport(
            name=name, version=_version(None, dist, source), source=source, distribution=dist_name
        )
        self.result.reports.append(report)
        where = plugin_where(name, source, value, dist_name)

        try:
            plugin = importer()
        except Exception as exc:  # noqa: BLE001 -- a plugin's import error is the plugin's
            self._skip(report, import_problem(exc, name, value, dist_name), where, exc)
            return
        report.version = _version(plugin, dist, source)

        problem = check_hook_api(plugin)
        if problem:
            self._skip(report, problem, where)
            return

        pm = self.result.pm
        try:
            pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 -- pluggy's validation errors, name clashes
            self._skip(report, f"could not be registered: {type(exc).__name__}: {exc}", where, exc)
            return
        report.hooks = [caller.name for caller in pm.get_hookcallers(plugin) or ()]
        warn_deprecated_hooks(pm, plugin, where)

        problem = check_hooks(pm, plugin, report.hooks)
        if problem is None:
            problem = self._collect_tasks(plugin, name, report)
        if problem is None:
            problem = self._collect_extensions(plugin, name, report)
        if problem:
            pm.unregister(plugin)
            self._skip(report, problem, where)

    def _collect_tasks(self, plugin: object, name: str, report: PluginReport) -> str | None:
        """Call this plugin's register_tasks alone; keep its tasks only if all are valid."""
        pending: dict[str, TaskSpec] = {}
        problems: list[str] = []
        open_ = True

        def register(spec: TaskSpec) -> None:
            if not open_:
                raise PluginError(
                    f"plugin {name!r} called register() after register_tasks returned: "
                    "call it only from inside register_tasks"
                )
            task = getattr(spec, "name", None)
            label = f"task {task!r}" if isinstance(task, str) else "a task"
            found = validate_task(spec)
            if isinstance(task, str) and task in pending:
                found.append(
                    f"the name {task!r} is registered twice by this plugin: give each task its own name"
                )
            elif isinstance(task, str) and task in self.result.tasks:
                owner = self.result.task_plugin[task]
                found.append(
                    f"the name {task!r} is already taken by plugin {owner!r}: rename the task, or block "
                    f"one of the two plugins (shopmtl --block {owner} or --block {name})"
                )
            if found:
                problems.append(f"{label}: " + "; ".join(found))
            elif isinstance(task, str):
                pending[task] = spec

        impls = [
            i for i in self.result.pm.hook.register_tasks.get_hookimpls() if i.plugin is plugin
        ]
        try:
            for impl in impls:
                impl.function(**{arg: register for arg in impl.argnames})
        except Exception as exc:  # noqa: BLE001
            return f"raised in register_tasks: {type(exc).__name__}: {exc}"
        finally:
            open_ = False
        if problems:
            return "registered invalid task(s):\n  - " + "\n  - ".join(problems)

        report.tasks = list(pending)
        for task, spec in pending.items():
            self.result.tasks[task] = spec
            self.result.task_plugin[task] = name
        return None

    def _collect_extensions(self, plugin: object, name: str, report: PluginReport) -> str | None:
        """Strategies (:data:`STRATEGY_HOOKS`) and metrics this plugin registers; all valid, or none kept."""
        found: dict[str, dict[str, Any]] = {kind: {} for kind in STRATEGY_HOOKS.values()}
        metrics: list[MetricSpec] = []
        problems: list[str] = []

        def named(kind: str):
            def register(key: str, factory: Any) -> None:
                existing = getattr(self.result, kind)
                if not isinstance(key, str) or not key.isidentifier():
                    problems.append(f"{_singular(kind)} name {key!r} must be an identifier")
                elif not callable(factory):
                    problems.append(
                        f"{_singular(kind)} {key!r} is not callable: pass a function or class"
                    )
                elif key in existing or key in found[kind]:
                    problems.append(
                        f"{_singular(kind)} {key!r} is already registered: choose another name"
                    )
                else:
                    found[kind][key] = factory

            return register

        def register_metric(spec: MetricSpec) -> None:
            if not isinstance(spec, MetricSpec):
                problems.append(
                    f"register_metrics takes MetricSpec(...), got {type(spec).__name__}"
                )
            elif spec.direction not in ("max", "min", "info"):
                problems.append(
                    f"metric {spec.name!r}: direction must be 'max', 'min' or 'info', not {spec.direction!r}"
                )
            elif not callable(spec.compute):
                problems.append(f"metric {spec.name!r}: compute is not callable")
            else:
                metrics.append(spec)

        callbacks = {hook: named(kind) for hook, kind in STRATEGY_HOOKS.items()}
        callbacks["register_metrics"] = register_metric
        for hook, callback in callbacks.items():
            for impl in getattr(self.result.pm.hook, hook).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                try:
                    impl.function(**{arg: callback for arg in impl.argnames})
                except Exception as exc:  # noqa: BLE001
                    return f"raised in {hook}: {type(exc).__name__}: {exc}"
        if problems:
            return "registered invalid extension(s):\n  - " + "\n  - ".join(problems)
        for kind, factories in found.items():
            getattr(self.result, kind).update(factories)
        self.result.metrics.extend(metrics)
        report.extensions = {k: list(v) for k, v in found.items() if v}
        if metrics:
            report.extensions["metrics"] = [f"{m.task}.{m.name}" for m in metrics]
        return None

    def _skip(
        self, report: PluginReport, problem: str, where: str, cause: BaseException | None = None
    ) -> None:
        report.error = problem
        report.tasks = []
        self.fail(
            f"shopmtl {where} was skipped: {problem}\n  {how_to_disable(report, report.name)}",
            cause,
        )


#: ``register_*(register)`` hooks whose callback takes ``(name, factory)``, and the
#: :class:`PluginSet` registry each one fills.
STRATEGY_HOOKS = {
    "register_samplers": "samplers",
    "register_loss_weightings": "loss_weightings",
    "register_sharing_kinds": "sharing_kinds",
    "register_gradient_surgeries": "gradient_surgeries",
}


def _singular(kind: str) -> str:
    """``samplers`` -> ``sampler``, ``gradient_surgeries`` -> ``gradient_surgery`` (for messages)."""
    return kind[:-3] + "y" if kind.endswith("ies") else kind[:-1]
