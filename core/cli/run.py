"""``shopmtl evaluate`` and ``shopmtl predict``: use the best model of a finished run."""

from __future__ import annotations

import json

import click

from shopmtl.core.cli.common import friendly_errors, plugin_set, strict_plugins_option

precision_option = click.option(
    "--precision", type=click.Choice(["auto", "no", "bf16", "fp16"]), default="auto", show_default=True,
    help="Inference autocast on this machine: auto = bf16 where the hardware computes it natively, else fp32.")


@click.command()
@precision_option
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(["val", "test"]), default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print metrics as JSON.")
@strict_plugins_option
@click.pass_context
@friendly_errors
def evaluate(ctx: click.Context, run_dir: str, split: str, as_json: bool, precision: str) -> None:
    """Evaluate the best model of RUN_DIR on a split."""
    from shopmtl.core.engine.predict import evaluate_run, load_run
    from shopmtl.core.report.tables import metrics_table

    plugins = plugin_set(ctx)
    run = load_run(run_dir, plugins.tasks, plugins.sharing_kinds, precision)
    metrics = evaluate_run(run, split, plugins.metrics)
    click.echo(json.dumps(metrics, indent=2) if as_json else metrics_table(run.specs, metrics))


@click.command()
@precision_option
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--task", "task_names", required=True, multiple=True,
              help="Task whose head predicts; repeat for several tasks in one pass.")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False), help="CSV, Parquet or JSONL rows.")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the rows plus prediction columns (same format as the input).")
@strict_plugins_option
@click.pass_context
@friendly_errors
def predict(ctx: click.Context, run_dir: str, task_names: tuple[str, ...], input_path: str, output_path: str,
            precision: str) -> None:
    """Predict TASK for every row of INPUT with the model of RUN_DIR.

    Repeat --task to predict several tasks that read the same columns in one pass (each
    distinct text encoded once); their columns are then named TASK.COLUMN.
    """
    from shopmtl.core.data.tableio import read_table, table_format, write_table
    from shopmtl.core.engine.predict import load_run, predict_tasks

    if table_format(input_path) != table_format(output_path):
        raise click.BadParameter(f"--output must have the input's format ({table_format(input_path)})", param_hint="--output")
    plugins = plugin_set(ctx)
    run = load_run(run_dir, plugins.tasks, plugins.sharing_kinds, precision)
    frame = read_table(input_path)
    tasks = list(dict.fromkeys(task_names))
    write_table(predict_tasks(run, tasks, frame, source=input_path), output_path)
    click.echo(f"wrote {len(frame)} rows with predictions of {', '.join(repr(t) for t in tasks)} to {output_path}")
