"""The ``shopmtl`` click group: built-in commands plus those plugins add."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: Help text of ``--strict-plugins``, on the group and on each command that loads plugins.
STRICT_HELP = "Fail when a plugin cannot be loaded instead of skipping it."


class PluginCommandGroup(click.Group):
    """A group that asks plugins for extra subcommands (``register_commands``) on first need.

    Plugins load lazily -- only when a name is not a built-in command, or when the
    help lists every command -- so ``shopmtl train`` does not pay for it, and after the
    group's own options are parsed, so ``--block NAME`` applies to commands too.
    """

    _plugins_added = False

    def _add_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        from shopmtl.core.cli import plugin_set

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # `shopmtl plugins` reports broken plugins
            try:
                plugins = plugin_set(ctx)
            except Exception:  # noqa: BLE001 -- strict-mode failures surface in the command itself
                return
        plugins.add_commands(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._add_plugin_commands(ctx)
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands(ctx)
        return super().list_commands(ctx)


def _set_strict(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """Record ``--strict-plugins`` given after a subcommand where the group's own flag lives.

    ``shopmtl.core.cli.plugin_set`` (and :func:`shopmtl.testing.registered_plugin`) read
    the root context's ``strict_plugins``; setting it there makes ``shopmtl train
    --strict-plugins`` mean exactly ``shopmtl --strict-plugins train``.
    """
    if value:
        ctx.find_root().params["strict_plugins"] = True
    return value


def strict_plugins_option(command: F) -> F:
    """Accept ``--strict-plugins`` after the subcommand too (click takes a group's options only before it)."""
    return click.option("--strict-plugins", is_flag=True, expose_value=False, callback=_set_strict,
                        help=STRICT_HELP)(command)
