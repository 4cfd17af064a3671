"""``shopmtl train``: train a config's tasks jointly and print the test metrics."""

from __future__ import annotations

from pathlib import Path

import click
from shopmtl.core.cli.common import (
    friendly_errors,
    is_main_process,
    plugin_set,
    strict_plugins_option,
    trust_option,
)
from shopmtl.core.config import (
    SAFE_ON_RESUME,
    Config,
    TaskConfig,
    config_with_overrides,
    load_config,
)


@click.command()
@click.argument("config_file", required=False, type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    help="Run directory (default: runs/<run_name>).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in the output directory with its own config.yaml. A config file or override "
    "given too may change only: " + ", ".join(SAFE_ON_RESUME) + "; other differences are refused.",
)
@click.option("--overwrite", is_flag=True, help="Replace a run already in the output directory.")
@click.option(
    "--task",
    "only_tasks",
    multiple=True,
    metavar="NAME",
    help="Train only these tasks of the config (repeatable).",
)
@click.option(
    "--from",
    "init_from",
    type=click.Path(exists=True, file_okay=False),
    metavar="RUN_DIR",
    help="Start from a trained run's encoder (add tasks to it; with encoder.freeze=true its other heads are kept).",
)
@click.option(
    "--allow-pickle",
    is_flag=True,
    help="UNSAFE, with --from: open the source run's classical priors an older shopmtl saved as "
    "pickles (runs code from the file; this run saves them as arrays). Config: allow_pickle.",
)
@strict_plugins_option
@trust_option
@click.pass_context
@friendly_errors
def train(
    ctx: click.Context,
    config_file: str | None,
    overrides: tuple[str, ...],
    output_dir: str | None,
    resume: bool,
    overwrite: bool,
    only_tasks: tuple[str, ...],
    init_from: str | None,
    allow_pickle: bool,
) -> None:
    """Train the tasks of CONFIG_FILE jointly (default: all four built-in tasks on the bundled data).

    OVERRIDES are dotted KEY=VALUE pairs, e.g. training.max_steps=200 tasks.sales.weight=2.
    """
    # Imported when the command runs: `shopmtl --help` and `shopmtl plugins` stay torch-free.
    from shopmtl.core.data.task_config import select_tasks, skipped_plugins
    from shopmtl.core.engine.plugin_faults import plugin_faults
    from shopmtl.core.engine.trainer import train as run_training
    from shopmtl.core.report.tables import metrics_table
    from shopmtl.core.runs.resume import resume_config

    if config_file and "=" in config_file and not Path(config_file).exists():
        overrides, config_file = (config_file, *overrides), None  # only overrides were given
    saved = _resumed_run(config_file, overrides, output_dir) if resume else None
    if saved is not None and config_file is None:  # the run's own config, with the overrides given
        config = config_with_overrides(
            saved[1].model_dump(mode="json"), overrides, str(saved[0] / "config.yaml")
        )
    else:
        config = load_config(config_file, overrides)
    if output_dir:
        config.output_dir = output_dir
    if init_from:
        config.init_from = init_from
    if allow_pickle:
        config.allow_pickle = True
    plugins = plugin_set(ctx, config)
    if only_tasks:
        select_tasks(
            only_tasks, plugins.tasks, skipped_plugins(plugins)
        )  # unknown names fail here, with the closest match
        config.tasks = {name: config.tasks.get(name, TaskConfig()) for name in only_tasks}
    if saved is not None:
        config.output_dir = str(saved[2])  # where the run is now, even if it was moved since
        config = resume_config(
            saved[1], config, saved[0]
        )  # only the keys safe to change may differ
    with plugin_faults(
        plugins, list(config.tasks)
    ):  # an error in a task's code names the task, plugin, file and line
        result = run_training(config, plugins, resume=resume, overwrite=overwrite)
    if result.metrics and is_main_process():
        specs = {name: plugins.tasks[name] for name in result.metrics}
        test = {name: splits["test"] for name, splits in result.metrics.items()}
        click.echo(
            f"\nTest metrics of the best model (step {result.best_step} of {result.steps}):\n"
        )
        click.echo(metrics_table(specs, test, result.baselines))
        click.echo(f"\nRun written to {result.output_dir}")


def _resumed_run(
    config_file: str | None, overrides: tuple[str, ...], output_dir: str | None
) -> tuple[Path, Config, Path] | None:
    """``(folder, its config, run directory)``: what ``--resume`` continues, or ``None`` when there is nothing yet."""
    from shopmtl.core.runs.checkpoint import read_run_config
    from shopmtl.core.runs.resume import resumed_from

    target = (
        Path(output_dir)
        if output_dir
        else load_config(config_file, overrides).resolved_output_dir()
    )
    folder = resumed_from(target)
    if folder is None:
        return None
    if folder == target:  # a finished run: every file checked before its config is read
        from shopmtl.core.runs.checkpoint import check_contents
        from shopmtl.core.runs.manifest import verify_run

        verify_run(target, checkpoints=True)
        check_contents(target)
    return folder, read_run_config(folder), target
