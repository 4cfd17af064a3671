"""``shopmtl plugins`` (list, ``check NAME``) and ``shopmtl new-plugin NAME``: the plugin author's commands.

Plugins come from the context object's :class:`~shopmtl.core.cli.common.PluginSource`
(the installed ones, or those :func:`shopmtl.testing.registered_plugin` passes in).
"""

from __future__ import annotations

import difflib
import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from shopmtl.core.authoring.scaffold_kinds import KINDS
from shopmtl.core.cli.common import (
    IMPORT_ENTRY_POINTS,
    friendly_errors,
    plugin_set,
    plugin_source,
    strict_plugins_option,
)

__all__ = ["new_plugin", "plugins"]


def _load(ctx: click.Context, config: Any = None) -> Any:
    """The PluginSet, leniently, warnings silenced (the output reports every problem)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return plugin_set(ctx, config)


# ------------------------------------------------------------------ shopmtl plugins


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--load",
    "import_them",
    is_flag=True,
    help="Import each installed plugin and run the registration checks (hooks, tasks, loaded or "
    "skipped). Without it, installed plugins are listed from their package metadata only: "
    "none of their code runs.",
)
@strict_plugins_option
@click.pass_context
@friendly_errors
def plugins(ctx: click.Context, as_json: bool, import_them: bool) -> None:
    """List plugins: name, version, source, and -- with --load -- hooks, tasks and whether each loaded.

    Installed (entry-point) plugins are listed from their package metadata without
    importing them: a plugin is code, and listing it runs none of it. --load imports and
    registers them: "loaded" then means each task's schema, head and loss passed
    shopmtl's registration checks. Datasets, labels and metrics are not built here:
    `shopmtl plugins check NAME` checks one plugin's tasks in depth.
    """
    if ctx.invoked_subcommand is not None:
        return
    from shopmtl.core.report.tables import render_table

    ctx.meta[IMPORT_ENTRY_POINTS] = import_them
    found = _load(ctx)
    if as_json:
        click.echo(
            json.dumps([{**r.to_dict(), "status": _status(r)} for r in found.reports], indent=2)
        )
        return
    rows = [
        [
            r.name,
            r.version,
            r.source,
            ", ".join(r.hooks),
            ", ".join(r.tasks),
            _status(r) + (f": {r.error}" if r.error else ""),
        ]
        for r in found.reports
    ]
    click.echo(render_table(["plugin", "version", "source", "hooks", "tasks", "status"], rows))
    click.echo("\n" + LISTING_FOOTER)


#: What ``shopmtl plugins`` checked, printed under its table: "loaded" is not "checked".
LISTING_FOOTER = (
    "loaded: imported, hooks known, each task's schema, head and loss passed the registration checks.\n"
    "not imported: an installed plugin listed from its package metadata; `shopmtl plugins --load` imports it.\n"
    "Not checked here: datasets, labels and metrics -- run `shopmtl plugins check NAME` for those."
)


def _status(report: Any) -> str:
    """``"loaded"``, ``"skipped"`` (see ``report.error``) or ``"not imported"`` (listed from metadata)."""
    if not getattr(report, "imported", True):
        return "not imported"
    return "loaded" if report.error is None else "skipped"


@plugins.command("check")
@click.argument("name")
@click.option(
    "--no-data", is_flag=True, help="Only the registration checks: do not build the datasets."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Config whose data.path, data.columns, seed and tasks.<name>.settings the datasets are built with.",
)
@click.argument("overrides", nargs=-1)
@strict_plugins_option
@click.pass_context
@friendly_errors
def check(
    ctx: click.Context,
    name: str,
    no_data: bool,
    config_file: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Check plugin NAME's tasks as a run would use them; exit 1 on any problem.

    For each task: shopmtl's registration checks (schema, metric directions, a dry run
    of the head and the loss), then -- unless --no-data -- its dataset is built and
    checked (splits, columns, label values for the kind) and its metrics are computed
    once. OVERRIDES are dotted KEY=VALUE pairs applied to --config.
    """
    from shopmtl.core.config import load_config

    config = load_config(config_file, overrides) if (config_file or overrides) else None
    found = _load(ctx, config)
    report = next((r for r in found.reports if r.name == name), None)
    if report is None:
        _not_loaded(found, name)
    where = report.source if not report.distribution else f"{report.source}, {report.distribution}"
    click.echo(f"plugin {name} {report.version} ({where})")

    specs, lines = _plugin_tasks(found, name, report, plugin_source(ctx).objects)
    if report.error:
        click.echo("  skipped when shopmtl loaded it -- none of its hooks or tasks is active:")
        click.echo(_indent(report.error, "    "))
    for line in lines:
        click.echo(line)

    failed, n_problems = _check_tasks(specs, config, no_data)
    if not specs and not report.error:
        extensions = getattr(report, "extensions", None) or {}
        added = "; ".join(
            f"{kind.replace('_', ' ')}: {', '.join(names)}" for kind, names in extensions.items()
        )
        hooks = f"hooks: {', '.join(report.hooks)}" if report.hooks else ""
        click.echo("  registers no task" + (f" ({added or hooks})" if added or hooks else ""))
    if failed or report.error:
        summary = (
            f"{n_problems} problem(s) in {failed} of {len(specs)} task(s)"
            if failed
            else "the plugin did not load"
        )
        click.echo(
            f"\n{summary}: fix them, then run `shopmtl plugins check {name}` again.", err=True
        )
        # not ctx.exit(): friendly_errors would turn click's Exit into a message
        raise SystemExit(1)
    if specs:
        depth = (
            "registration checks only (--no-data)"
            if no_data
            else "registration, dataset, labels, metrics, baselines, priors"
        )
        click.echo(f"\nchecked {len(specs)} task(s) of plugin {name}: {depth} -- ok")


def _check_tasks(specs: list[Any], config: Any, no_data: bool) -> tuple[int, int]:
    """Check each task and print its verdict; ``(tasks that failed, problems found)``."""
    from shopmtl.core.authoring.taskcheck import check_task

    failed = n_problems = 0
    for spec in specs:
        task_name = getattr(spec, "name", None) or "<unnamed task>"
        options = _data_options(config, spec) if config is not None else {}
        try:
            problems = check_task(spec, data=not no_data, **options)
        except Exception as exc:  # noqa: BLE001 -- e.g. invalid settings in the config
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            failed += 1
            n_problems += len(problems)
            click.echo(
                f"  task {task_name}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"
            )
            for problem in problems:
                click.echo(_indent(problem, "      ", first="    - "))
        else:
            click.echo(
                f"  task {task_name}: ok"
                + (" (registration checks only: --no-data)" if no_data else "")
            )
    return failed, n_problems


def _not_loaded(found: Any, name: str) -> None:
    """Explain why ``name`` is not among the loaded plugins, and exit 1."""
    names = [r.name for r in found.reports]
    if name in found.skipped:
        reason = found.skipped[name]
        how = (
            "drop it from --block / plugins.blocked"
            if reason == "blocked"
            else "add it to SHOPMTL_PLUGINS, or unset it"
        )
        raise click.ClickException(
            f"plugin {name!r} is available but was not loaded ({reason}): {how}"
        )
    owner = found.task_plugin.get(name)
    if owner is not None:
        raise click.ClickException(
            f"{name!r} is a task, not a plugin: it belongs to plugin {owner!r} -- run `shopmtl plugins check {owner}`"
        )
    close = difflib.get_close_matches(name, [*names, *found.skipped], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    installed = ", ".join(names + sorted(found.skipped)) or "none"
    raise click.ClickException(
        f"no plugin named {name!r} is installed.{hint} Plugins: {installed}. "
        f'Install it (pip install ...), and check its entry point: [project.entry-points.shopmtl] {name} = "module"'
    )


def _plugin_tasks(
    found: Any, name: str, report: Any, known: Mapping[str, object]
) -> tuple[list[Any], list[str]]:
    """The plugin's task specs, and lines to print before them.

    A loaded plugin's tasks come from the PluginSet. A skipped plugin's are read again
    from its object (registered, built-in, passed to ``shopmtl.testing``, or an entry
    point), so each task is checked on its own; when the object cannot be had, the
    load error printed above is all there is.
    """
    if report.ok:
        return [found.tasks[t] for t in report.tasks if t in found.tasks], []
    plugin, error = _plugin_object(found, name, report, known)
    if plugin is None:
        return [], ([f"  ({error})"] if error else [])
    specs: list[Any] = []
    for function in _hook_functions(plugin, "register_tasks"):
        try:
            function(specs.append)
        except Exception as exc:  # noqa: BLE001
            return specs, [f"  register_tasks raised {type(exc).__name__}: {exc}"]
    if specs:
        return specs, [
            "  its tasks, checked one by one (a plugin loads only when all of them pass):"
        ]
    return specs, []


def _plugin_object(
    found: Any, name: str, report: Any, known: Mapping[str, object]
) -> tuple[Any, str | None]:
    """The plugin object called ``name`` (``known``: objects the caller passed in), or ``(None, why not)``."""
    plugin = found.pm.get_plugin(name)
    if plugin is not None:
        return plugin, None
    if name in known:
        return known[name], None
    if report.source == "builtin":
        try:
            from shopmtl.plugins.builtin import BUILTIN_PLUGINS
        except ImportError:
            BUILTIN_PLUGINS = ()
        for builtin_name, module in BUILTIN_PLUGINS:
            if builtin_name == name:
                return module, None
        return None, None
    import importlib.metadata

    from shopmtl.registry.hookspecs import ENTRY_POINT_GROUP

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                return ep.load(), None
            except Exception:  # noqa: BLE001 -- the report above already says why
                return (
                    None,
                    f"its module {ep.value} cannot be imported, so its tasks cannot be checked",
                )
    return None, None


def _hook_functions(plugin: Any, hook: str) -> list[Callable[..., Any]]:
    """``plugin``'s implementations of ``hook`` (functions marked with ``@hookimpl``)."""
    from shopmtl.registry.hookspecs import PROJECT_NAME

    marker = f"{PROJECT_NAME}_impl"
    functions = []
    for attr in dir(plugin):
        try:
            value = getattr(plugin, attr)
        except Exception:  # noqa: BLE001, S112 -- properties that raise
            continue
        options = getattr(value, marker, None)
        if (
            isinstance(options, dict)
            and callable(value)
            and (options.get("specname") or attr) == hook
        ):
            functions.append(value)
    return functions


def _data_options(config: Any, spec: Any) -> dict[str, Any]:
    task = config.tasks.get(getattr(spec, "name", None))
    options: dict[str, Any] = {
        "data_path": config.data.path,
        "column_map": dict(config.data.columns),
        "seed": config.seed,
    }
    if task is not None and task.settings:
        options["settings"] = dict(task.settings)
    return options


def _indent(text: str, prefix: str, first: str | None = None) -> str:
    lines = str(text).splitlines() or [""]
    head = (first if first is not None else prefix) + lines[0]
    return "\n".join([head, *(prefix + line for line in lines[1:])])


# --------------------------------------------------------------- shopmtl new-plugin


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Folder to create the package in (as shopmtl-NAME/).",
)
@click.option(
    "--author", default="Your Name", show_default=True, help="Author name for pyproject.toml."
)
@click.option(
    "--kind",
    type=click.Choice(list(KINDS)),
    default="regression",
    show_default=True,
    help="The task's kind: a price (regression), a bestseller flag (binary), "
    "a price band (multiclass) or product tags (multilabel), each on its own sample data.",
)
@friendly_errors
def new_plugin(name: str, output_dir: str, author: str, kind: str) -> None:
    """Create a plugin package for a new task NAME of --kind: code, its own data file, tests, README.

    The package works as generated: `pip install -e ./shopmtl-NAME` and shopmtl finds
    it; `pytest` in it checks the task and trains it briefly on a tiny encoder;
    `shopmtl train smoke.yaml` in it trains it jointly with the built-in tasks in about a minute.
    """
    from shopmtl.core.authoring.scaffold import create_plugin

    target = create_plugin(name, Path(output_dir), author=author, kind=kind)
    click.echo(f"created {target}/")
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        click.echo(f"  {path.relative_to(target)}")
    click.echo(
        "\nnext:\n"
        f"  cd {target}\n"
        "  pip install -e '.[test]'\n"
        "  python -m pytest\n"
        f"  shopmtl plugins check {name}\n"
        "  shopmtl train smoke.yaml --output-dir runs/smoke    # jointly with the built-ins, about a minute"
    )
