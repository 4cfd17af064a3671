"""The loaded plugins: what each one registered, how it fared, and how a run talks to them.

:func:`shopmtl.registry.manager.load_plugins` builds a :class:`PluginSet`; the trainer and
the CLI use it (tasks, samplers, weightings, metrics, commands, observer hooks), and
:class:`PluginReport` is what ``shopmtl plugins`` prints.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy
from shopmtl.registry.spec import (
    GradientSurgeryFactory,
    LossWeightingFactory,
    MetricSpec,
    SamplerFactory,
    SharingFactory,
    TaskSpec,
)

#: Comma-separated entry-point plugin names to load; empty = none; unset = all.
ENV_PLUGINS = "SHOPMTL_PLUGINS"
#: ``1``/``true``/``yes``/``on`` make a broken plugin an error instead of a warning.
ENV_STRICT = "SHOPMTL_STRICT_PLUGINS"

#: Hooks that watch a run; :meth:`PluginSet.notify` calls them one plugin at a time.
OBSERVER_HOOKS: tuple[str, ...] = ("on_run_start", "on_evaluation", "on_checkpoint_saved")


class PluginError(Exception):
    """A plugin could not be loaded or a hook failed, in strict mode (or a bad setting)."""


class PluginWarning(UserWarning):
    """A plugin was skipped, or one of its hooks failed; the run goes on without it."""


@dataclass
class PluginReport:
    """What happened to one plugin, for ``shopmtl plugins``, the run header and checkpoints.

    Attributes:
        name: the plugin's name (the built-in's name, or the entry point's name).
        version: its distribution's version (entry points), shopmtl's version
            (built-ins), the module's ``__version__``, or ``"unknown"``.
        source: ``"builtin"`` or ``"entry point"``.
        distribution: the distribution that declares the entry point, else ``None``.
        hooks: the hooks it implements.
        tasks: the tasks it registered (kept only when ``error`` is ``None``).
        error: why it was skipped, or ``None`` when it loaded.
        imported: ``False`` for an entry point listed from its metadata only (``shopmtl
            plugins`` without ``--load``): its code was not run, so hooks and tasks are unknown.
    """

    name: str
    version: str
    source: str
    distribution: str | None = None
    hooks: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    #: what else it registered: {"samplers": [...], "loss_weightings": [...], "sharing_kinds": [...],
    #: "gradient_surgeries": [...], "metrics": [...]}
    extensions: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    imported: bool = True

    @property
    def ok(self) -> bool:
        """Whether the plugin loaded (its hooks and tasks are active)."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``shopmtl plugins --json`` and checkpoint metadata."""
        return asdict(self)


@dataclass
class PluginSet:
    """The loaded plugins: the pluggy manager, the valid tasks, and a report per plugin.

    Attributes:
        pm: the :class:`pluggy.PluginManager`; only plugins that loaded are registered.
        tasks: task name -> spec, valid tasks only, in registration order.
        task_plugin: task name -> name of the plugin that registered it.
        reports: one report per plugin tried, in load order (built-ins first).
        skipped: plugin name -> why it was not tried (blocked, not selected).
        strict: whether a failing observer hook raises :class:`PluginError`.
        samplers, loss_weightings, sharing_kinds, gradient_surgeries: name -> factory,
            shopmtl's own and the plugins' (``register_samplers`` and its siblings).
        metrics: extra metrics plugins added to tasks (``register_metrics``).
    """

    pm: pluggy.PluginManager
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    task_plugin: dict[str, str] = field(default_factory=dict)
    reports: list[PluginReport] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    samplers: dict[str, SamplerFactory] = field(default_factory=dict)
    loss_weightings: dict[str, LossWeightingFactory] = field(default_factory=dict)
    sharing_kinds: dict[str, SharingFactory] = field(default_factory=dict)
    gradient_surgeries: dict[str, GradientSurgeryFactory] = field(default_factory=dict)
    metrics: list[MetricSpec] = field(default_factory=list)

    def _report(self, name: str) -> PluginReport | None:
        return next((r for r in self.reports if r.name == name), None)

    def extra_metrics(self, task: str) -> list[MetricSpec]:
        """Metrics other plugins added to ``task`` (``register_metrics``)."""
        return [m for m in self.metrics if m.task == task]

    def add_commands(self, cli: Any) -> None:
        """Let each plugin add subcommands to ``cli`` (``register_commands``), one at a time.

        A plugin whose hook raises, or that reuses a command name, is reported by name
        and its commands are left out; the others' commands stay.
        """
        for impl in reversed(self.pm.hook.register_commands.get_hookimpls()):
            name = self.pm.get_name(impl.plugin)
            before = dict(cli.commands)
            try:
                impl.function(**{arg: cli for arg in impl.argnames})
                clashes = [c for c in before if cli.commands.get(c) is not before[c]]
                if clashes:
                    raise ValueError(f"command name(s) {clashes} already exist: choose other names")
            except Exception as exc:  # noqa: BLE001 -- isolate the plugin
                cli.commands.clear()
                cli.commands.update(before)
                message = (
                    f"plugin {name!r} failed in register_commands: {type(exc).__name__}: {exc}"
                )
                if self.strict:
                    raise PluginError(message) from exc
                warnings.warn(message, PluginWarning, stacklevel=2)

    def versions(self) -> dict[str, str]:
        """Plugin name -> version for every plugin that loaded (saved with checkpoints)."""
        return {r.name: r.version for r in self.reports if r.ok}

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call every plugin's implementation of an observer hook, each on its own.

        Implementations run in pluggy's order (``tryfirst``, then the last registered
        first, then ``trylast``); each gets only the arguments it names (it may name
        fewer than the spec). One that raises is reported by name with a :class:`PluginWarning`
        and the others still run; in strict mode it raises :class:`PluginError`.

        :param hook_name: one of :data:`OBSERVER_HOOKS`.
        :param kwargs: every argument the hook's spec lists, by name.
        :raises ValueError: unknown hook, or arguments that do not match its spec
            (a bug in the caller, not in a plugin).
        """
        if hook_name not in OBSERVER_HOOKS:
            raise ValueError(
                f"notify() calls observer hooks only ({', '.join(OBSERVER_HOOKS)}), not {hook_name!r}"
            )
        caller = getattr(self.pm.hook, hook_name)
        expected = set(caller.spec.argnames)
        if set(kwargs) != expected:
            raise ValueError(
                f"notify({hook_name!r}) needs exactly the arguments {sorted(expected)}, got {sorted(kwargs)}"
            )
        # pluggy's own call order: tryfirst, then the last registered first, then trylast
        # (get_hookimpls() lists them the other way round).
        for impl in reversed(caller.get_hookimpls()):
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as exc:  # noqa: BLE001 -- isolate the plugin, report it by name
                message = (
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}. "
                    f"The run goes on; {how_to_disable(self._report(impl.plugin_name), impl.plugin_name)}"
                )
                if self.strict:
                    raise PluginError(message) from exc
                warnings.warn(message, PluginWarning, stacklevel=2)


def how_to_disable(report: PluginReport | None, name: str) -> str:
    """How to run without plugin ``name``: what its source allows."""
    block = f"block it (shopmtl --block {name}, or plugins.blocked: [{name}] in the config)"
    if report is not None and report.source == "builtin":
        return f"to run without it, {block}"
    uninstall = (
        f", or pip uninstall {report.distribution}"
        if report is not None and report.distribution
        else ""
    )
    return (
        f"to run without it, leave {name!r} out of {ENV_PLUGINS} ({ENV_PLUGINS}= loads the built-ins only), "
        f"{block}{uninstall}"
    )
