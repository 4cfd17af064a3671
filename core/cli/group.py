"""The ``shopmtl`` click group: built-in commands plus those plugins add."""

from __future__ import annotations

import warnings

import click
from shopmtl.core.cli.common import plugin_set


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
