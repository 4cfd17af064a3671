"""``shopmtl data`` and ``shopmtl tasks``: what the tasks are and the rows they train on."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click
from shopmtl.core.cli.common import friendly_errors, plugin_set, strict_plugins_option
from shopmtl.core.config import load_config
from shopmtl.core.report.tables import render_table


@click.command()
@click.argument("task_name")
@click.option(
    "--split", type=click.Choice(["train", "val", "test"]), default="train", show_default=True
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="CSV, Parquet or JSONL.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Config whose data and task settings apply.",
)
@click.argument("overrides", nargs=-1)
@strict_plugins_option
@click.pass_context
@friendly_errors
def data(
    ctx: click.Context,
    task_name: str,
    split: str,
    output_path: str,
    config_file: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Write TASK's rows as the model sees them (inputs and labels)."""
    from shopmtl.core.data.prepare import build_task_data
    from shopmtl.core.data.tableio import table_format, write_rows
    from shopmtl.core.data.task_config import select_tasks, skipped_plugins
    from shopmtl.core.engine.plugin_faults import plugin_faults

    table_format(output_path)  # fail on a bad suffix before the work
    config = load_config(config_file, overrides)
    plugins = plugin_set(ctx, config)
    spec = select_tasks([task_name], plugins.tasks, skipped_plugins(plugins))[task_name]
    with plugin_faults(
        plugins, [task_name]
    ):  # an error in the task's code names the task, plugin, file and line
        frame = build_task_data(spec, config)[split]
    write_rows(frame, output_path)
    click.echo(f"wrote {len(frame)} {split} rows of '{task_name}' to {output_path}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@strict_plugins_option
@click.pass_context
@friendly_errors
def tasks(ctx: click.Context, as_json: bool) -> None:
    """List registered tasks: kind, plugin, inputs, labels, metrics."""
    found = plugin_set(ctx)
    records = []
    for name, spec in found.tasks.items():
        settings = (
            {f.name: _default(f) for f in dataclasses.fields(spec.settings)}
            if spec.settings
            else {}
        )
        records.append(
            {
                "name": name,
                "kind": spec.kind,
                "plugin": found.task_plugin.get(name),
                "description": spec.description,
                "text": spec.text,
                "text_pair": spec.text_pair,
                "numeric": list(spec.numeric),
                "categorical": list(spec.categorical),
                "labels": list(spec.labels),
                "classes": list(spec.classes),
                "metrics": dict(spec.metric_directions),
                "primary_metric": spec.primary_metric,
                "settings": settings,
                "priors": {prior: p.description for prior, p in spec.priors.items()},
            }
        )
    if as_json:
        click.echo(json.dumps(records, indent=2, default=str))
        return
    rows = [
        [
            r["name"],
            r["kind"],
            r["plugin"],
            r["primary_metric"],
            ", ".join(r["priors"]) or "-",
            r["description"],
        ]
        for r in records
    ]
    click.echo(
        render_table(["task", "kind", "plugin", "primary metric", "priors", "description"], rows)
    )
    if any(r["priors"] for r in records):
        click.echo(
            "\nA prior is a classical model the task's head starts from: tasks.<name>.prior: <prior>."
        )


def _default(field: Any) -> Any:
    """A settings dataclass field's default value (``None`` when it has none)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None
