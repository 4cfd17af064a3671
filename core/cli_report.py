"""``shopmtl report RUN_DIR``: an HTML page of plots and tables for a finished run.

``core/cli.py`` adds :data:`report` to the root group. Plugins are loaded through
``shopmtl.core.cli.plugin_set``, looked up when the command runs (no import cycle, and
tests can replace it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from shopmtl.core.cli_group import strict_plugins_option

__all__ = ["report"]


def _friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """``shopmtl.core.cli.friendly_errors``, imported when the command runs."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from shopmtl.core.cli import friendly_errors

        return friendly_errors(command)(*args, **kwargs)

    return wrapper


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(["val", "test"]), default="test", show_default=True,
              help="Split whose metrics and predictions are shown (baselines exist for test only).")
@click.option("--no-predictions", is_flag=True,
              help="Only what metrics.json holds (tables, training curves): no model, no data, seconds.")
@strict_plugins_option
@click.pass_context
@_friendly
def report(ctx: click.Context, run_dir: str, split: str, no_predictions: bool) -> None:
    """Write RUN_DIR/report/index.html: metrics beside baselines, training curves and
    plots of the best model's predictions (by task kind), as PNGs beside it."""
    import warnings

    from shopmtl.core import cli
    from shopmtl.core.report_html import build_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a broken plugin only costs its tasks' plots; the page says so
        plugins = cli.plugin_set(ctx)
    written = build_report(run_dir, plugins.tasks, split=split, predictions=not no_predictions)
    for note in written.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {written.index} ({len(written.images)} plots)")
