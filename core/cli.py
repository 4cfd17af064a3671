"""The ``shopmtl`` command: the one place that wires plugins, config and engine together."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shopmtl.core import cli_plugins
from shopmtl.core.cli_report import report
from shopmtl.core.cli_group import PluginCommandGroup
from shopmtl.core.config import Config, TaskConfig, load_config
from shopmtl.core.deploy.cli_commands import commands as deploy_commands
from shopmtl.registry.manager import PluginError

# Errors caused by input a person can fix: shown as one clear message, no traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError, KeyError, PluginError)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user-fixable errors into ``Error: ...`` and exit code 1 (``SHOPMTL_DEBUG=1`` shows tracebacks)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except _USER_ERRORS as error:
            if os.environ.get("SHOPMTL_DEBUG"):
                raise
            raise click.ClickException(str(error).strip("'\"")) from None

    return wrapper


def plugin_set(ctx: click.Context, config: Config | None = None):
    """Load built-in and installed plugins, honouring --block/--strict-plugins and the config."""
    from shopmtl.plugins.builtin import BUILTIN_PLUGINS
    from shopmtl.registry.manager import load_plugins

    options = ctx.find_root().params
    blocked = list(options.get("block") or ())
    strict = bool(options.get("strict_plugins"))
    if config is not None:
        blocked += config.plugins.blocked
        strict = strict or config.plugins.strict
    return load_plugins(BUILTIN_PLUGINS, strict=strict, blocked=blocked)


@click.group(cls=PluginCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shopmtl")
@click.option("--block", "-p", multiple=True, metavar="PLUGIN",
              help="Do not load this plugin (repeatable). SHOPMTL_PLUGINS=a,b selects installed plugins; empty loads only the built-ins.")
@click.option("--strict-plugins", is_flag=True, help="Fail when a plugin cannot be loaded instead of skipping it.")
def cli(block: tuple[str, ...], strict_plugins: bool) -> None:
    """shopmtl: train e-commerce tasks jointly on one shared pretrained text encoder."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("default", category=UserWarning, module="shopmtl")


@cli.command()
@click.argument("config_file", required=False, type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--output-dir", type=click.Path(file_okay=False), help="Run directory (default: runs/<run_name>).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in the output directory.")
@click.option("--overwrite", is_flag=True, help="Replace a run already in the output directory.")
@click.option("--task", "only_tasks", multiple=True, metavar="NAME",
              help="Train only these tasks of the config (repeatable).")
@click.option("--from", "init_from", type=click.Path(exists=True, file_okay=False), metavar="RUN_DIR",
              help="Start from a trained run's encoder (add tasks to it; with encoder.freeze=true its other heads are kept).")
@click.pass_context
@friendly_errors
def train(ctx: click.Context, config_file: str | None, overrides: tuple[str, ...], output_dir: str | None,
          resume: bool, overwrite: bool, only_tasks: tuple[str, ...], init_from: str | None) -> None:
    """Train the tasks of CONFIG_FILE jointly (default: all four built-in tasks on the bundled data).

    OVERRIDES are dotted KEY=VALUE pairs, e.g. training.max_steps=200 tasks.sales.weight=2.
    """
    from shopmtl.core.report import metrics_table
    from shopmtl.core.trainer import train as run_training

    if config_file and "=" in config_file and not Path(config_file).exists():
        overrides, config_file = (config_file, *overrides), None  # only overrides were given
    config = load_config(config_file, overrides)
    if output_dir:
        config.output_dir = output_dir
    if init_from:
        config.init_from = init_from
    plugins = plugin_set(ctx, config)
    if only_tasks:
        from shopmtl.core.prepare import select_tasks

        select_tasks(only_tasks, plugins.tasks)  # unknown names fail here, with the closest match
        config.tasks = {name: config.tasks.get(name, TaskConfig()) for name in only_tasks}
    result = run_training(config, plugins, resume=resume, overwrite=overwrite)
    if result.metrics and _is_main_process():
        specs = {name: plugins.tasks[name] for name in result.metrics}
        test = {name: splits["test"] for name, splits in result.metrics.items()}
        click.echo(f"\nTest metrics of the best model (step {result.best_step} of {result.steps}):\n")
        click.echo(metrics_table(specs, test, result.baselines))
        click.echo(f"\nRun written to {result.output_dir}")


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(["val", "test"]), default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print metrics as JSON.")
@click.pass_context
@friendly_errors
def evaluate(ctx: click.Context, run_dir: str, split: str, as_json: bool) -> None:
    """Evaluate the best model of RUN_DIR on a split."""
    from shopmtl.core.predict import evaluate_run, load_run
    from shopmtl.core.report import metrics_table

    plugins = plugin_set(ctx)
    run = load_run(run_dir, plugins.tasks)
    metrics = evaluate_run(run, split, plugins.metrics)
    click.echo(json.dumps(metrics, indent=2) if as_json else metrics_table(run.specs, metrics))


@cli.command()
@click.argument("task_name")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", show_default=True)
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False), help="CSV, Parquet or JSONL.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config whose data and task settings apply.")
@click.argument("overrides", nargs=-1)
@click.pass_context
@friendly_errors
def data(ctx: click.Context, task_name: str, split: str, output_path: str, config_file: str | None,
         overrides: tuple[str, ...]) -> None:
    """Write TASK's rows as the model sees them (inputs and labels)."""
    from shopmtl.core.prepare import build_task_data, select_tasks
    from shopmtl.core.tableio import table_format, write_table

    table_format(output_path)  # fail on a bad suffix before the work
    config = load_config(config_file, overrides)
    plugins = plugin_set(ctx, config)
    spec = select_tasks([task_name], plugins.tasks)[task_name]
    frame = build_task_data(spec, config)[split]
    write_table(frame, output_path)
    click.echo(f"wrote {len(frame)} {split} rows of '{task_name}' to {output_path}")


cli.add_command(cli_plugins.plugins)
cli.add_command(cli_plugins.new_plugin)
cli.add_command(report)
# predict (chunked, --engine), serve, export: putting a trained run to work (core/deploy/).
for _command in deploy_commands(friendly_errors, lambda ctx: plugin_set(ctx)):  # late lookup: tests patch plugin_set
    cli.add_command(_command)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@friendly_errors
def tasks(ctx: click.Context, as_json: bool) -> None:
    """List registered tasks: kind, plugin, inputs, labels, metrics."""
    import dataclasses

    from shopmtl.core.report import render_table

    found = plugin_set(ctx)
    records = []
    for name, spec in found.tasks.items():
        settings = {f.name: _default(f) for f in dataclasses.fields(spec.settings)} if spec.settings else {}
        records.append({
            "name": name, "kind": spec.kind, "plugin": found.task_plugin.get(name), "description": spec.description,
            "text": spec.text, "text_pair": spec.text_pair, "numeric": list(spec.numeric),
            "categorical": list(spec.categorical), "labels": list(spec.labels), "classes": list(spec.classes),
            "metrics": dict(spec.metric_directions), "primary_metric": spec.primary_metric, "settings": settings,
        })
    if as_json:
        click.echo(json.dumps(records, indent=2, default=str))
        return
    rows = [[r["name"], r["kind"], r["plugin"], r["primary_metric"], r["description"]] for r in records]
    click.echo(render_table(["task", "kind", "plugin", "primary metric", "description"], rows))


def _default(field: Any) -> Any:
    import dataclasses

    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="shopmtl")


if __name__ == "__main__":
    sys.exit(main())
