"""Every reliability case (tests/reliability/cases.py): exit code, the words of the message, nothing lost.

"Nothing lost": the sha256 of every file of the run directory and of the input files is
the same before and after the command (the case's ``guarded`` paths), and no half-written
output is left (``absent``).
"""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import REPO

from reliability.cases import CASES
from reliability.harness import digest, invoke


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case(case, toy_run, tmp_path, monkeypatch):
    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    shutil.copytree(toy_run.output_dir, tmp_path / "run")
    args = case.prepare(tmp_path)
    before = digest(tmp_path, case.guarded)
    assert before or not case.guarded, f"{case.id}: nothing to guard"

    result = invoke(case.plugins, args)

    assert result.exit_code == case.exit_code, f"{case.id}: {result.output}\n{result.exception!r}"
    for words in case.words:
        assert words.replace("{ws}", str(tmp_path)) in result.output, (
            f"{case.id}: {words!r} not in {result.output}"
        )
    if not case.env and "--debug" not in args:
        assert "Traceback" not in result.output
    if case.exit_code and not (case.env or "--debug" in args):
        assert sum(line.startswith("Error: ") for line in result.output.splitlines()) == 1, (
            result.output
        )
    if case.one_line:
        assert result.stderr.startswith("Error:") and result.stderr.strip().count("\n") == 0, (
            result.stderr
        )
    assert digest(tmp_path, case.guarded) == before, f"{case.id}: a guarded file changed"
    for path in case.absent:
        assert not (tmp_path / path).exists(), f"{case.id}: {path} was written"
    if case.then is not None:
        case.then(tmp_path, result)


def test_there_are_at_least_forty_distinct_cases():
    assert len({case.id for case in CASES}) == len(CASES) >= 40


def test_docs_table_lists_every_case():
    """docs/reliability.md has one row per case, by id, and no row for a case that is gone."""
    table = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.MULTILINE))
    assert documented >= {case.id for case in CASES}


def test_help_documents_debug_and_the_keys_safe_to_change_on_resume():
    from shopmtl.core.config import SAFE_ON_RESUME

    top = invoke("toy", ["--help"]).output
    assert "--debug" in top and "traceback" in top and "SHOPMTL_DEBUG" in top
    train = " ".join(invoke("toy", ["train", "--help"]).output.split())
    assert all(key in train for key in SAFE_ON_RESUME) and "own config.yaml" in train
