"""The ``predict``, ``serve`` and ``export`` commands of ``shopmtl``: putting a run to work.

The work itself is done by :mod:`shopmtl.core.deploy` (serving, streamed prediction, export);
these commands parse options, load plugins and turn user errors into one line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from shopmtl.core.cli.common import (
    friendly_errors,
    plugin_set,
    strict_plugins_option,
    trust_option,
)
from shopmtl.core.cli.export_run import export_run
from shopmtl.core.deploy.serve.settings import API_KEY_ENV, ServeSettings, api_key_from

#: ``--precision`` of the commands that run a model (predict, serve, evaluate).
precision_option = click.option(
    "--precision",
    type=click.Choice(["auto", "no", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="Inference autocast on this machine: auto = bf16 where the hardware computes it natively, else fp32.",
)

#: ``--allow-pickle`` of every command that opens a run (predict, serve, evaluate, export,
#: report, train --from). Off by default: it exists only for runs saved before hook API 1.5.
allow_pickle_option = click.option(
    "--allow-pickle",
    is_flag=True,
    help="UNSAFE: open classical priors an older shopmtl saved as pickles (priors/<task>.joblib); "
    "unpickling runs code from the file. Only for runs you trust; train them again to drop it.",
)


def serve_guard_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``serve``'s guards: the API key, the row cap, the queue, the timeout, the concurrency cap."""
    defaults = ServeSettings()
    options = [
        click.option(
            "--api-key",
            default=None,
            help=f"Require `Authorization: Bearer KEY` on /v1/* (401 otherwise; /health stays open). "
            f"Default: ${API_KEY_ENV}. Prefer the variable: a command line is visible to other users.",
        ),
        click.option(
            "--max-rows",
            default=defaults.max_rows,
            show_default=True,
            type=click.IntRange(min=1),
            help="Rows per request at most; more are refused with 413.",
        ),
        click.option(
            "--max-queue",
            default=defaults.max_queue,
            show_default=True,
            type=click.IntRange(min=1),
            help="Requests waiting for the model at most; more are refused with 429 and Retry-After.",
        ),
        click.option(
            "--request-timeout",
            default=defaults.request_timeout,
            show_default=True,
            type=click.FloatRange(min=0, min_open=True),
            help="Seconds a request may wait for its predictions; then 503.",
        ),
        click.option(
            "--limit-concurrency",
            default=defaults.limit_concurrency,
            show_default=True,
            type=click.IntRange(min=1),
            help="Open connections and tasks at most (uvicorn answers 503 past it); keep it above --max-queue.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def serve_run(
    run_dir: str | Path,
    plugins: Any,
    tasks: Sequence[str],
    settings: ServeSettings,
    precision: str = "auto",
    allow_pickle: bool = False,
) -> None:
    """Load the run once and serve ``tasks`` (all when empty) until SIGINT/SIGTERM."""
    from shopmtl.core.engine.predict import RunError, load_run

    try:
        from shopmtl.core.deploy.serve.server import run_server
        from shopmtl.core.deploy.serve.service import ModelService
    except ImportError as error:
        raise RunError(
            f"serving needs FastAPI and uvicorn ({error}): pip install 'shopmtl[serve]'"
        ) from None

    run = load_run(
        run_dir,
        plugins.tasks,
        plugins.sharing_kinds,
        precision,
        tasks=tasks,
        allow_pickle=allow_pickle,
    )
    run_server(ModelService(run, tasks), settings)


def predict_file(
    run_dir: str,
    plugins: Any,
    tasks: Sequence[str],
    input_path: str,
    output_path: str,
    engine: str = "torch",
    chunk_rows: int | None = None,
    precision: str = "auto",
    csv_escape: bool = True,
    allow_pickle: bool = False,
) -> int:
    """Predict every row of ``input_path`` into ``output_path`` in chunks; the rows written.

    ``csv_escape``: a CSV output's text cells that a spreadsheet would run as a formula get
    a leading ``'`` (:func:`shopmtl.core.data.tableio.escape_formulas`).
    """
    from shopmtl.core.deploy import stream
    from shopmtl.core.deploy.bank import bounded_bank
    from shopmtl.core.engine.predict import load_run, predict_tasks

    stream.check_paths(input_path, output_path)  # before the model loads or anything is read
    if engine == "onnxruntime":  # the export's graphs and files only: no PyTorch model is built
        from shopmtl.core.deploy.onnx_engine import load_onnx_run

        run = load_onnx_run(run_dir, plugins.tasks, tasks=tasks, allow_pickle=allow_pickle)
    else:
        run = load_run(
            run_dir,
            plugins.tasks,
            plugins.sharing_kinds,
            precision,
            tasks=tasks,
            allow_pickle=allow_pickle,
        )
    numeric = [c for t in tasks for c in run.specs[t].numeric]

    def predict(chunk: Any, first_row: int) -> Any:
        stream.check_finite(chunk, numeric, input_path, first_row)
        bounded_bank(run)
        return predict_tasks(run, tasks, chunk, source=input_path)

    return stream.predict_file(
        input_path, output_path, predict, chunk_rows or stream.CHUNK_ROWS, csv_escape
    )


def runs_a_model(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--precision``, ``--allow-pickle``, ``--trust-unverified`` and the plugin options, the
    click context passed in, user errors in words."""
    return allow_pickle_option(
        precision_option(
            strict_plugins_option(trust_option(click.pass_context(friendly_errors(command))))
        )
    )


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--task",
    "task_names",
    required=True,
    multiple=True,
    help="Task whose head predicts; repeat for several tasks in one pass.",
)
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="CSV, Parquet or JSONL rows, read in chunks (any size).",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the rows plus prediction columns (same format as the input), atomically.",
)
@click.option(
    "--engine",
    type=click.Choice(["torch", "onnxruntime"]),
    default="torch",
    show_default=True,
    help="onnxruntime: run the graphs of an ONNX export (RUN_DIR from `shopmtl export --format onnx`) "
    "without loading a PyTorch model; --precision does not apply.",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Rows read, predicted and written at a time (default 8192).",
)
@click.option(
    "--no-csv-escape",
    is_flag=True,
    help="Write CSV text cells as they are. By default a cell starting with = + - @ tab or CR "
    "gets a leading ' so spreadsheets show it as text instead of running it as a formula.",
)
@runs_a_model
def predict(
    ctx: click.Context,
    run_dir: str,
    task_names: tuple[str, ...],
    input_path: str,
    output_path: str,
    engine: str,
    chunk_rows: int | None,
    no_csv_escape: bool,
    precision: str,
    allow_pickle: bool,
) -> None:
    """Predict TASK for every row of INPUT with the model of RUN_DIR.

    Repeat --task to predict several tasks that read the same columns in one pass (each
    distinct text encoded once); their columns are then named TASK.COLUMN.
    """
    from shopmtl.core.data.tableio import table_format

    if table_format(input_path) != table_format(output_path):
        raise click.BadParameter(
            f"--output must have the input's format ({table_format(input_path)})",
            param_hint="--output",
        )
    tasks = list(dict.fromkeys(task_names))
    written = predict_file(
        run_dir,
        plugin_set(ctx),
        tasks,
        input_path,
        output_path,
        engine,
        chunk_rows,
        precision,
        not no_csv_escape,
        allow_pickle,
    )
    click.echo(
        f"wrote {written} rows with predictions of {', '.join(repr(t) for t in tasks)} to {output_path}"
    )


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--task",
    "task_names",
    multiple=True,
    help="Serve only these tasks (repeatable; default: all).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; 0.0.0.0 exposes the server to the network.",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--max-batch-rows",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows of concurrent requests predicted together at most.",
)
@click.option(
    "--max-wait-ms",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="How long a batch waits for more requests when clients are concurrent (a lone one never waits).",
)
@click.option(
    "--max-body-bytes",
    default=1 << 20,
    show_default=True,
    type=click.IntRange(min=1),
    help="Larger request bodies are refused with 413.",
)
@serve_guard_options
@runs_a_model
def serve(
    ctx: click.Context,
    run_dir: str,
    task_names: tuple[str, ...],
    host: str,
    port: int,
    max_batch_rows: int,
    max_wait_ms: float,
    max_body_bytes: int,
    api_key: str | None,
    max_rows: int,
    max_queue: int,
    request_timeout: float,
    limit_concurrency: int,
    precision: str,
    allow_pickle: bool,
) -> None:
    """Serve the model of RUN_DIR over HTTP (docs at http://HOST:PORT/docs) until Ctrl-C or SIGTERM."""
    settings = ServeSettings(
        host,
        port,
        max_batch_rows,
        max_wait_ms,
        max_body_bytes,
        api_key=api_key_from(api_key),
        max_rows=max_rows,
        max_queue=max_queue,
        request_timeout=request_timeout,
        limit_concurrency=limit_concurrency,
    )
    serve_run(run_dir, plugin_set(ctx), list(task_names), settings, precision, allow_pickle)


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--format",
    "kind",
    type=click.Choice(["hf", "onnx"]),
    required=True,
    help="hf: a transformers folder (LoRA merged) + heads + model card; onnx: graphs for onnxruntime.",
)
@click.option(
    "--output",
    "output_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A new folder (an export never overwrites).",
)
@click.option(
    "--quantize",
    type=click.Choice(["none", "int8"]),
    default="none",
    show_default=True,
    help="onnx: int8 = dynamic int8 quantisation of the encoder (checked: each task's primary "
    "metric on the test split may move by at most --max-metric-change).",
)
@click.option(
    "--max-metric-change",
    type=click.FloatRange(min=0),
    default=None,
    help="onnx --quantize int8: the largest change of a primary metric allowed [default: 0.005].",
)
@allow_pickle_option
@strict_plugins_option
@trust_option
@click.pass_context
@friendly_errors
def export(
    ctx: click.Context,
    run_dir: str,
    kind: str,
    output_dir: str,
    quantize: str,
    max_metric_change: float | None,
    allow_pickle: bool,
) -> None:
    """Export the model of RUN_DIR for other tools."""
    click.echo(
        export_run(
            run_dir, plugin_set(ctx), kind, output_dir, allow_pickle, quantize, max_metric_change
        )
    )


def commands() -> list[click.Command]:
    """The commands of this module, for the root group."""
    return [predict, serve, export]
