"""``shopmtl report RUN_DIR``: an HTML page of plots and tables for a finished run."""

from __future__ import annotations

import warnings

import click
from shopmtl.core.cli.common import (
    friendly_errors,
    plugin_set,
    strict_plugins_option,
    trust_option,
)
from shopmtl.core.cli.deploy import allow_pickle_option

__all__ = ["report"]


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--split",
    type=click.Choice(["val", "test"]),
    default="test",
    show_default=True,
    help="Split whose metrics and predictions are shown (baselines exist for test only).",
)
@click.option(
    "--no-predictions",
    is_flag=True,
    help="Only what metrics.json holds (tables, training curves): no model, no data, seconds.",
)
@allow_pickle_option
@strict_plugins_option
@trust_option
@click.pass_context
@friendly_errors
def report(
    ctx: click.Context, run_dir: str, split: str, no_predictions: bool, allow_pickle: bool
) -> None:
    """Write RUN_DIR/report/index.html: metrics beside baselines, training curves and
    plots of the best model's predictions (by task kind), as PNGs beside it."""
    from shopmtl.core.report.html import build_report  # matplotlib loads only here

    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # a broken plugin only costs its tasks' plots; the page says so
        plugins = plugin_set(ctx)
    written = build_report(
        run_dir,
        plugins.tasks,
        split=split,
        predictions=not no_predictions,
        allow_pickle=allow_pickle,
    )
    for note in written.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {written.index} ({len(written.images)} plots)")
