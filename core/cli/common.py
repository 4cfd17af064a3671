"""What every ``shopmtl`` subcommand shares: how it gets its plugins, and how it reports errors.

Plugins reach a command through click's context object: the root group puts a
:class:`PluginSource` in ``ctx.obj`` (the installed plugins) unless the caller passed
one -- ``CliRunner().invoke(cli, args, obj=PluginSource(...))``, which is how
:mod:`shopmtl.testing` and the tests hand the command their own plugins without
replacing anything in this module.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from shopmtl.core.config import Config
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.registry.manager import PluginError, PluginSet

# Errors caused by input a person can fix: shown as one clear message, no traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    RuntimeError,
    KeyError,
    PluginError,
)

#: ``load(ctx, config)``: the PluginSet a command runs with (``config`` may be ``None``).
PluginLoader = Callable[[click.Context, "Config | None"], PluginSet]
F = TypeVar("F", bound=Callable[..., Any])


def debugging() -> bool:
    """True under ``shopmtl --debug`` (or ``SHOPMTL_DEBUG=1``, its alias): tracebacks are shown."""
    context = click.get_current_context(silent=True)
    flag = bool(context is not None and context.find_root().params.get("debug"))
    return flag or bool(os.environ.get("SHOPMTL_DEBUG"))


def error_message(error: BaseException) -> str:
    """One message for ``Error: ...``: a user error's own words; anything else named by its type."""
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[
            0
        ]  # str(KeyError) adds quotes around the message; the message keeps its own
    if isinstance(error, _USER_ERRORS):
        return str(error)
    return (
        f"unexpected {type(error).__name__}: {error} -- this is a bug or an unchecked case; "
        "run again with --debug for the traceback, and report it"
    )


def _close_progress_bars() -> None:
    """Close a progress bar the error interrupted, so the message starts on a line of its own."""
    std = sys.modules.get("tqdm.std")  # loaded only when a command showed one
    for bar in list(getattr(getattr(std, "tqdm", None), "_instances", ())):
        bar.close()


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every error into ``Error: ...`` and exit code 1: no traceback reaches the user unless
    ``--debug`` (or ``SHOPMTL_DEBUG=1``) asks for it."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:  # noqa: BLE001 -- the user sees words; --debug shows the traceback
            _close_progress_bars()
            if debugging():
                raise
            raise click.ClickException(error_message(error)) from None

    return wrapper


def plugin_options(ctx: click.Context, config: Config | None = None) -> tuple[list[str], bool]:
    """``(blocked, strict)`` from --block/--strict-plugins and the config's ``plugins`` section."""
    options = ctx.find_root().params
    blocked = list(options.get("block") or ())
    strict = bool(options.get("strict_plugins"))
    if config is not None:
        blocked += config.plugins.blocked
        strict = strict or config.plugins.strict
    return blocked, strict


def installed_plugins(ctx: click.Context, config: Config | None = None) -> PluginSet:
    """Load built-in and installed plugins, honouring --block/--strict-plugins and the config."""
    from shopmtl.plugins.builtin import BUILTIN_PLUGINS  # the composition root names the built-ins

    blocked, strict = plugin_options(ctx, config)
    return load_plugins(
        BUILTIN_PLUGINS,
        strict=strict,
        blocked=blocked,
        allow=config.plugins.allow if config is not None else None,
        import_entry_points=bool(ctx.meta.get(IMPORT_ENTRY_POINTS, True)),
    )


#: ``ctx.meta`` key: ``False`` lists installed entry points without importing them (``shopmtl plugins``).
IMPORT_ENTRY_POINTS = "shopmtl.import_entry_points"


@dataclass(frozen=True)
class PluginSource:
    """Where the commands get their plugins: click's context object (``ctx.obj``).

    :param load: returns the PluginSet for a command (default: built-ins and entry points).
    :param objects: plugin objects by name, so ``shopmtl plugins check`` can re-read the
        tasks of a plugin that was skipped (the test kit fills it in).
    """

    load: PluginLoader = installed_plugins
    objects: Mapping[str, object] = field(default_factory=dict)


def plugin_source(ctx: click.Context) -> PluginSource:
    """The root context's :class:`PluginSource` (the installed plugins unless the caller passed one)."""
    source = ctx.find_root().obj
    return source if isinstance(source, PluginSource) else PluginSource()


def plugin_set(ctx: click.Context, config: Config | None = None) -> PluginSet:
    """The PluginSet this command runs with, from the context's :class:`PluginSource`."""
    return plugin_source(ctx).load(ctx, config)


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a distributed launch (only rank 0 prints results)."""
    return os.environ.get("RANK", "0") == "0"


#: Help text of ``--strict-plugins``, on the group and on each command that loads plugins.
STRICT_HELP = "Fail when a plugin cannot be loaded instead of skipping it."


def _set_strict(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """Record ``--strict-plugins`` given after a subcommand where the group's own flag lives.

    :func:`plugin_options` reads the root context's ``strict_plugins``; setting it there
    makes ``shopmtl train --strict-plugins`` mean exactly ``shopmtl --strict-plugins train``.
    """
    if value:
        ctx.find_root().params["strict_plugins"] = True
    return value


def strict_plugins_option(command: F) -> F:
    """Accept ``--strict-plugins`` after the subcommand too (click takes a group's options only before it)."""
    return click.option(
        "--strict-plugins", is_flag=True, expose_value=False, callback=_set_strict, help=STRICT_HELP
    )(command)


TRUST_HELP = (
    "Open RUN_DIR even when it cannot be verified against its manifest (no manifest, a missing, "
    "changed or unlisted file, a bad signature). RISKY: the files may not be the ones the run was "
    "written with; only for runs whose source you trust (docs/security.md)."
)


def trust_option(command: F) -> F:
    """``--trust-unverified``: run ``command`` with manifest checks off (see docs/security.md).

    The choice holds for the command's own call only, so nothing outlives it (a test
    runner invoking several commands in one process sees each one's own choice).
    """
    from shopmtl.core.runs.manifest import trust_unverified

    @functools.wraps(command)
    def wrapper(*args: Any, trust_unverified_run: bool = False, **kwargs: Any) -> Any:
        with trust_unverified(trust_unverified_run):
            return command(*args, **kwargs)

    return click.option(  # type: ignore[return-value]
        "--trust-unverified", "trust_unverified_run", is_flag=True, help=TRUST_HELP
    )(wrapper)
