"""``shopmtl evaluate``: score the best model of a finished run (``predict``, ``serve`` and ``export`` are in core/deploy/)."""

from __future__ import annotations

import json

import click
from shopmtl.core.cli.common import (
    friendly_errors,
    plugin_set,
    strict_plugins_option,
    trust_option,
)
from shopmtl.core.cli.deploy import allow_pickle_option, precision_option


@click.command()
@precision_option
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(["val", "test"]), default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print metrics as JSON.")
@allow_pickle_option
@strict_plugins_option
@trust_option
@click.pass_context
@friendly_errors
def evaluate(
    ctx: click.Context, run_dir: str, split: str, as_json: bool, precision: str, allow_pickle: bool
) -> None:
    """Evaluate the best model of RUN_DIR on a split."""
    from shopmtl.core.engine.predict import evaluate_run, load_run
    from shopmtl.core.report.tables import metrics_table

    plugins = plugin_set(ctx)
    run = load_run(
        run_dir, plugins.tasks, plugins.sharing_kinds, precision, allow_pickle=allow_pickle
    )
    metrics = evaluate_run(run, split, plugins.metrics)
    click.echo(json.dumps(metrics, indent=2) if as_json else metrics_table(run.specs, metrics))
