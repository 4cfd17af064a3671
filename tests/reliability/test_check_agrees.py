"""``shopmtl plugins check`` and ``shopmtl train`` agree, case by case, on faulty plugins and data.

Both call the one check (core/data/checks.py, core/data/decodecheck.py); each case is a
task of tests/reliability/faulty_data.py (or a plugin that does not load), with the words
both commands must print -- the file, row or column, on one line. ``train`` runs with
``max_train_examples`` so small that the faulty row is never among the rows it keeps: the
check still reads every row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import toy_tasks
from click.testing import CliRunner
from shopmtl.core.cli import cli
from shopmtl.core.cli.common import PluginSource

from reliability import faulty_data
from reliability.harness import SMOKE, TINY


@dataclass(frozen=True)
class Agreement:
    task: str
    words: tuple[str, ...]  # in plugins check's report of the task and in train's error
    plugin: str = "faulty_data"


CASES = [
    Agreement("file_missing_x", ("part-1.parquet lacks column(s) ['x']", "same columns")),
    Agreement(
        "file_retyped_x",
        (
            "part-2.parquet: column 'x' is large_string",
            "where the split's other 2 files have double",
        ),
    ),
    Agreement("first_file_retyped_x", ("part-0.parquet: column 'x' is large_string",)),
    Agreement("val_lacks_shop", ("the val split", "lacks column(s) 'shop'")),
    Agreement(
        "inf_label_unsampled",
        ("label column 'value' of the train split is infinite on 1 row (row ",),
    ),
    Agreement(
        "inf_input_unsampled", ("numeric column 'x' of the train split is infinite on 1 row (row ",)
    ),
    Agreement(
        "words_in_x_unsampled",
        ("numeric column 'x' of the train split is not a number", "'12 units'"),
    ),
    Agreement(
        "text_none_unsampled", ("text column 'text' of the train split is not a string on 1 row",)
    ),
    Agreement(
        "word_label_unsampled", ("label column 'flag' of the train split is not a number", "'yes'")
    ),
    Agreement(
        "label_two_in_file", ("not 0 or 1 on 1 row (e.g. 2.0)", "part-1.parquet, its row 7)")
    ),
    Agreement(
        "nan_val_labels", ("label column 'value' of the val split is missing (NaN) on every row",)
    ),
    Agreement(
        "nan_test_labels", ("label column 'value' of the test split is missing (NaN) on every row",)
    ),
    Agreement(
        "nan_train_labels",
        ("label column 'value' of the train split is missing (NaN) on every row",),
    ),
    Agreement(
        "one_class_val", ("label column 'flag' of the val split is 0.0 on every labelled row",)
    ),
    Agreement("empty_val", ("the val split has no rows",)),
    Agreement("decode_no_rows", ("decode raised ValueError", "(0, 1)", "zero rows")),
    Agreement("decode_onto_x", ("decode returns column(s) 'x'",)),
    Agreement("future_value", ("hook API 2.0", "hook API 1."), plugin="future"),
    Agreement(
        "typo_value",
        ("No module named 'shopmtl_tpyo'", "acme-typo's pyproject.toml"),
        plugin="typo",
    ),
]


class _Dist:
    version = "0.1.0"
    metadata = {"Name": "acme-typo"}
    name = "acme-typo"


class _MisspeltEntryPoint:
    """``typo = "shopmtl_tpyo"`` in a pyproject: the module does not exist."""

    name, value, dist = "typo", "shopmtl_tpyo", _Dist()

    def load(self):
        import importlib

        return importlib.import_module(self.value)


@pytest.fixture(scope="module")
def plugins():
    from shopmtl.registry.manager import load_plugins

    return load_plugins(
        [("toy", toy_tasks), ("faulty_data", faulty_data), ("future", faulty_data.Future())],
        only=["typo"],
        entry_points=[_MisspeltEntryPoint()],
    )


def _invoke(plugins, args):
    return CliRunner().invoke(
        cli, [str(a) for a in args], obj=PluginSource(load=lambda ctx, config=None: plugins)
    )


@pytest.fixture(scope="module")
def checked(plugins):
    """``plugins check`` once per plugin: its output, cut into one section per task."""
    sections: dict[str, str] = {}
    for plugin in ("faulty_data", "future", "typo"):
        result = _invoke(plugins, ["plugins", "check", plugin])
        assert result.exit_code == 1, result.output
        if plugin != "faulty_data":
            sections[plugin] = result.output
            continue
        for name, body in re.findall(
            r"^  task (\w+): (.*?)(?=^  task |\Z)", result.output, re.S | re.M
        ):
            sections[name] = body
    return sections


def test_there_are_at_least_fifteen_cases():
    assert len({case.task for case in CASES}) == len(CASES) >= 15
    assert {t.name for t in faulty_data.TASKS} <= {case.task for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.task)
def test_check_and_train_refuse_alike(case, plugins, checked, tmp_path: Path):
    report = checked[case.task if case.plugin == "faulty_data" else case.plugin]
    result = _invoke(
        plugins,
        [
            "train",
            SMOKE,
            "tasks={}",
            *TINY,
            f"tasks.{case.task}.max_train_examples={faulty_data.SAMPLE}",
            "--task",
            case.task,
            "--output-dir",
            tmp_path / "run",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
    for words in case.words:
        assert words in report, f"plugins check: {words!r} not in\n{report}"
        assert words in result.output, f"train: {words!r} not in\n{result.output}"
        line = next(line for line in result.output.splitlines() if words in line)
        assert len(line) < 600, line  # one line, not a dump
    if case.plugin == "faulty_data":
        assert "problem" in report and f"plugins check {case.plugin}" in result.output


def test_a_clean_task_is_ok(plugins):
    """The same check passes the toy plugin (the session's toy run trains it through it)."""
    result = _invoke(plugins, ["plugins", "check", "toy"])
    assert result.exit_code == 0, result.output
