"""The ``shopmtl`` root group: the one place that wires plugins, config and engine together.

Each subcommand lives in its own module of this package and imports only
:mod:`shopmtl.core.cli.common` from here; this module adds them all to the group.
"""

from __future__ import annotations

import logging
import warnings

import click
from shopmtl.core.cli import data, deploy, plugins, report, run, train
from shopmtl.core.cli.common import (
    STRICT_HELP,
    PluginSource,
)
from shopmtl.core.cli.group import PluginCommandGroup


@click.group(cls=PluginCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shopmtl")
@click.option(
    "--block",
    "-p",
    multiple=True,
    metavar="PLUGIN",
    help="Do not load this plugin (repeatable). SHOPMTL_PLUGINS=a,b selects installed plugins; empty loads only the built-ins.",
)
@click.option(
    "--strict-plugins", is_flag=True, help=STRICT_HELP + " Also accepted after the command."
)
@click.option(
    "--debug",
    is_flag=True,
    help="Show the full traceback of an error (default: one line saying what went wrong). SHOPMTL_DEBUG=1 does the same.",
)
@click.pass_context
def cli(ctx: click.Context, block: tuple[str, ...], strict_plugins: bool, debug: bool) -> None:
    """shopmtl: train e-commerce tasks jointly on one shared pretrained text encoder."""
    ctx.ensure_object(PluginSource)  # the installed plugins, unless the caller passed a source
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("default", category=UserWarning, module="shopmtl")


for command in (
    train.train,
    run.evaluate,
    data.data,
    plugins.plugins,
    plugins.new_plugin,
    report.report,
    data.tasks,
):
    cli.add_command(command)
# predict (chunked, --engine), serve, export: putting a trained run to work (core/deploy/).
for command in deploy.commands():
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="shopmtl")
