"""Reliability cases of plugin code, labels, numeric inputs and ``predict`` (see :mod:`reliability.cases`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reliability.harness import SMOKE, TINY, Case, rows_file

# ----------------------------------------------------------------------------- plugin code, labels, inputs


def _train_task(task: str, *extra: str):
    return lambda ws: [
        *extra,
        "train",
        SMOKE,
        "tasks={}",
        *TINY,
        "--task",
        task,
        "--output-dir",
        str(ws / "new"),
    ]


def _traceback_shown(ws: Path, result) -> None:
    import traceback

    from shopmtl.core.engine.plugin_faults import PluginCodeError

    assert isinstance(result.exception, PluginCodeError), result.exception
    chain, error = [], result.exception
    while error is not None:
        chain.append(type(error).__name__)
        error = error.__cause__
    assert "KeyError" in chain, (
        chain
    )  # the original error, with its own traceback, behind the words
    shown = "".join(traceback.format_exception(result.exception))
    assert "faulty_tasks.py" in shown and "build_with_typo" in shown


def _file(path: Path, text: str, args: list[str]) -> list[str]:
    path.write_text(text)
    return args


def _sales_rows(ws: Path) -> list[str]:
    rows = pd.DataFrame(
        {
            "InvoiceNo": ["1", "2", "3"],
            "StockCode": ["A", "B", "C"],
            "Description": ["RED MUG", "BLUE MUG", "BAG"],
            "Quantity": ["2", "3", "10000000000000000000"],
            "InvoiceDate": ["2011-01-03 10:00"] * 3,
            "UnitPrice": ["1.5", "2.5", "3.0"],
            "CustomerID": ["1", "2", "3"],
            "Country": ["UK"] * 3,
        }
    )
    rows.to_csv(ws / "sales.csv", index=False)
    return [
        "data",
        "sales",
        "--config",
        SMOKE,
        f"data.path={ws / 'sales.csv'}",
        "--output",
        str(ws / "rows.csv"),
    ]


PLUGIN_ERRORS = [
    Case(
        "train-plugin-keyerror",
        "`train`, a KeyError in a plugin's dataset builder",
        _train_task("typo_value"),
        1,
        (
            "task 'typo_value' (plugin faulty",
            "build_dataset raised KeyError: 'reveiw'",
            "faulty_tasks.py:",
            "plugins check faulty",
        ),
        plugins="faulty",
        absent=("new",),
    ),
    Case(
        "data-plugin-keyerror",
        "`data`, a KeyError in a plugin's dataset builder",
        lambda ws: ["data", "typo_value", "--config", SMOKE, "--output", str(ws / "rows.csv")],
        1,
        ("task 'typo_value' (plugin faulty", "KeyError", "'reveiw'", "faulty_tasks.py:"),
        plugins="faulty",
        absent=("rows.csv",),
    ),
    Case(
        "train-word-labels",
        "`train`, a binary label column holding words",
        _train_task("word_flag"),
        1,
        ("task 'word_flag'", "label column 'flag'", "not a number", "'yes'"),
        plugins="faulty",
        absent=("new",),
    ),
    Case(
        "train-label-two",
        "`train`, a binary label of 2",
        _train_task("two_flag"),
        1,
        ("task 'two_flag'", "label column 'flag' of the train split is not 0 or 1"),
        plugins="faulty",
        absent=("new",),
    ),
    Case(
        "train-infinite-input",
        "`train`, an infinite value in a numeric input",
        _train_task("inf_value"),
        1,
        ("task 'inf_value'", "numeric column 'x'", "infinite on 2 rows (rows 5, 9)"),
        plugins="faulty",
        absent=("new",),
    ),
    Case(
        "train-primary-metric-none",
        "`train`, a primary metric that cannot be computed (None)",
        _train_task("nan_flag"),
        1,
        ("task 'nan_flag'", "primary metric 'auc'"),
        plugins="faulty",
        absent=("new",),
    ),
    Case(
        "train-metric-crash",
        "`train`, a ZeroDivisionError in a plugin's metrics",
        _train_task("crash_flag"),
        1,
        (
            "task 'crash_flag'",
            "ZeroDivisionError",
            "faulty_tasks.py:",
            "metrics_that_crash",
            "division by zero",
        ),
        plugins="faulty",
        absent=("new",),
    ),
    Case(
        "train-prior-unknown",
        "`train`, `tasks.<name>.prior` naming a prior the task does not offer",
        lambda ws: [
            "train",
            SMOKE,
            "tasks={}",
            *TINY,
            "--task",
            "prior_value",
            "tasks.prior_value.prior=brokn",
            "--output-dir",
            str(ws / "new"),
        ],
        1,
        ("tasks.prior_value.prior", "no prior 'brokn'", "offers: broken"),
        plugins="faulty",
        absent=("new",),
    ),
    Case(
        "train-prior-crash",
        "`train`, a classical prior whose fit raises",
        lambda ws: [
            "train",
            SMOKE,
            "tasks={}",
            *TINY,
            "--task",
            "prior_value",
            "tasks.prior_value.prior=broken",
            "--output-dir",
            str(ws / "new"),
        ],
        1,
        ("task 'prior_value'", "fitting prior 'broken' failed: ZeroDivisionError"),
        plugins="faulty",
        absent=("new",),
    ),
    Case(
        "debug-shows-traceback",
        "`--debug train`, a plugin error",
        _train_task("typo_value", "--debug"),
        1,
        (),
        plugins="faulty",
        then=_traceback_shown,
    ),
    Case(
        "debug-env-alias",
        "`SHOPMTL_DEBUG=1 train`, a plugin error",
        _train_task("typo_value"),
        1,
        (),
        plugins="faulty",
        then=_traceback_shown,
        env={"SHOPMTL_DEBUG": "1"},
    ),
    Case(
        "empty-config-file",
        "`train` with an empty YAML file",
        lambda ws: _file(
            ws / "empty.yaml", "# nothing but a comment\n", ["train", str(ws / "empty.yaml")]
        ),
        1,
        ("empty.yaml is empty",),
    ),
    Case(
        "data-quantity-overflow",
        "`data sales`, a quantity beyond int64 in the transactions file",
        _sales_rows,
        1,
        ("column Quantity", "on row 2", "9.2e18"),
        plugins="builtin",
        guarded=("sales.csv",),
        absent=("rows.csv",),
    ),
]


# ----------------------------------------------------------------------------- predict


def _predict_onto_input(ws: Path) -> list[str]:
    (ws / "sub").mkdir()
    source = rows_file(ws)
    return [
        "predict",
        str(ws / "run"),
        "--task",
        "toy_value",
        "--input",
        str(source),
        "--output",
        str(ws / "sub" / ".." / "in.csv"),
    ]


def _predict_cells(**cells: object):
    def prepare(ws: Path) -> list[str]:
        source = rows_file(ws, **cells)
        return [
            "predict",
            str(ws / "run"),
            "--task",
            "toy_value",
            "--input",
            str(source),
            "--output",
            str(ws / "out.csv"),
            "--chunk-rows",
            "2",
        ]

    return prepare


def _no_temporary_left(ws: Path, result) -> None:
    assert not [p.name for p in ws.iterdir() if p.name.startswith(".out.csv")]


PREDICT = [
    Case(
        "predict-output-is-input",
        "`predict --output ./sub/../in.csv` (the input, by another name)",
        _predict_onto_input,
        1,
        ("is the input file itself",),
        guarded=("run", "in.csv"),
    ),
    Case(
        "predict-infinite-input",
        "`predict`, inf in a numeric input column",
        _predict_cells(x_1="inf"),
        1,
        ("row 2 has inf", "numeric column 'x'", "finite"),
        guarded=("run", "in.csv"),
        absent=("out.csv",),
    ),
    Case(
        "predict-text-in-numeric-input",
        "`predict`, text in a numeric input column",
        _predict_cells(x_2="12 units"),
        1,
        ("row 3 has '12 units'", "'12 units'", "numeric column 'x'", "not a number"),
        guarded=("run", "in.csv"),
        absent=("out.csv",),
    ),
    Case(
        "predict-fails-late-writes-nothing",
        "`predict` failing in a later chunk: no half-written output",
        _predict_cells(x_5="inf"),
        1,
        ("row 6 has inf",),
        guarded=("run", "in.csv"),
        absent=("out.csv",),
        then=_no_temporary_left,
    ),
]
