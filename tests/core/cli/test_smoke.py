"""The whole pipeline on the four built-in tasks, as a user runs it.

* ``shopmtl train examples/configs/smoke.yaml`` through the installed console script, in
  a subprocess: the run directory, ``plugins.json`` with versions, metrics for val and
  test, safetensors weights and the printed test-metrics table;
* ``shopmtl data <task> --split test`` then ``shopmtl predict`` on (a slice of) its output,
  for every task (in-process, through the real command and the real built-in plugins);
* the same training as **two processes** under ``accelerate launch`` (on CPU over gloo
  when there is no GPU): one header saying ``processes: 2``, one set of files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import REPO, SMOKE_CONFIG
from shopmtl.core.cli import cli

pytestmark = pytest.mark.integration

TASKS = ("sales", "price_bin", "user_profile", "recommend")
KINDS = {
    "sales": "regression",
    "price_bin": "multiclass",
    "user_profile": "multilabel",
    "recommend": "binary",
}
BIN = Path(sys.executable).parent


def _builtins():
    import shopmtl.plugins.builtin

    return shopmtl.plugins.builtin


def _script(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, (
        f"the {name!r} console script is not installed: pip install -e . puts it beside python"
    )
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["SHOPMTL_PLUGINS"] = ""  # the built-ins only, whatever else is installed
    for name in ("SHOPMTL_STRICT_PLUGINS", "SHOPMTL_DEBUG", "RANK", "LOCAL_RANK", "WORLD_SIZE"):
        env.pop(name, None)
    return env


def _run(args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    completed = subprocess.run(
        args, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    seconds = time.perf_counter() - started
    assert completed.returncode == 0, (
        f"{' '.join(args)} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed, seconds


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    _builtins()
    output_dir = tmp_path_factory.mktemp("smoke") / "run"
    completed, seconds = _run(
        [_script("shopmtl"), "train", str(SMOKE_CONFIG), "--output-dir", str(output_dir)],
        timeout=600,
    )
    print(f"\nsmoke run (shopmtl train examples/configs/smoke.yaml): {seconds:.1f} s wall")
    return output_dir, completed, seconds


def test_smoke_train_writes_a_complete_run(smoke_run):
    out, completed, _ = smoke_run
    assert (out / "config.yaml").is_file()
    plugins = json.loads((out / "plugins.json").read_text())
    owners = plugins["tasks"]
    assert set(owners) == set(TASKS)
    versions = {p["name"]: p["version"] for p in plugins["plugins"] if p["error"] is None}
    for task in TASKS:
        assert versions.get(owners[task]) not in (None, "", "unknown"), (
            task,
            owners[task],
            versions,
        )

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["tasks"]) == set(TASKS)
    for task in TASKS:
        for split in ("val", "test"):
            values = metrics["tasks"][task][split]
            assert values and any(isinstance(v, float) for v in values.values()), (
                task,
                split,
                values,
            )
    assert set(metrics["baselines"]["test"]) == set(TASKS)
    assert metrics["steps"] == 12 and [h["step"] for h in metrics["history"]] == [6, 12]

    model = out / "model"
    assert (model / "encoder.safetensors").is_file()
    assert {p.name for p in (model / "heads").iterdir()} == {f"{t}.safetensors" for t in TASKS}
    assert not [p for p in out.rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".pickle"}]


def test_smoke_train_prints_the_test_metrics_table(smoke_run):
    _, completed, _ = smoke_run
    stdout = completed.stdout
    assert "processes: 1" in stdout
    assert "Test metrics of the best model (step" in stdout
    for task in TASKS:
        assert f"{task} ({KINDS[task]})" in stdout
        assert f"  task {task} ({KINDS[task]})" in stdout  # the data summary of the header
    assert stdout.count("baseline: ") >= len(TASKS)
    assert "Run written to" in stdout
    assert "Traceback" not in completed.stderr


# Formats vary by task; slices keep the predictions quick.
FORMAT = {"sales": "csv", "price_bin": "jsonl", "user_profile": "parquet", "recommend": "parquet"}
SLICE = 400


@pytest.mark.parametrize("task", TASKS)
def test_data_then_predict(smoke_run, task, tmp_path, monkeypatch):
    builtins = _builtins()
    from shopmtl.core.data.tableio import read_table, write_table
    from shopmtl.core.mtl.builtin import load_plugins

    out, _, _ = smoke_run
    monkeypatch.setenv("SHOPMTL_PLUGINS", "")  # the built-ins only, whatever else is installed
    for name in ("SHOPMTL_STRICT_PLUGINS", "SHOPMTL_DEBUG", "RANK"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    kind = FORMAT[task]
    exported = tmp_path / f"{task}-test.{kind}"

    result = runner.invoke(
        cli,
        ["data", task, "--split", "test", "--output", str(exported), "--config", str(SMOKE_CONFIG)],
    )
    assert result.exit_code == 0, result.output
    rows = read_table(exported)
    assert f"wrote {len(rows)} test rows of '{task}'" in result.output
    spec = load_plugins(builtins.BUILTIN_PLUGINS, only=[]).tasks[task]
    assert set(spec.columns) <= set(rows.columns) and len(rows) > 0

    # New rows, as a user brings them: a slice, without the labels.
    new = rows.head(SLICE).drop(columns=list(spec.labels))
    source, target = tmp_path / f"new.{kind}", tmp_path / f"scored.{kind}"
    write_table(new, source)
    result = runner.invoke(
        cli, ["predict", str(out), "--task", task, "--input", str(source), "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    scored = read_table(target)
    assert len(scored) == len(new)
    assert list(scored.columns[: len(new.columns)]) == list(new.columns)
    added = [c for c in scored.columns if c not in new.columns]
    assert added, "predict added no prediction column"
    for column in added:
        values = scored[column]
        if pd.api.types.is_numeric_dtype(values):
            assert values.notna().all(), column
    for key in spec.keys:
        assert (
            scored[key].astype(str).tolist() == new[key].astype(str).tolist()
        )  # same rows, same order


def test_two_process_training(tmp_path):
    _builtins()
    output_dir = tmp_path / "run2"
    completed, seconds = _run(
        [
            _script("accelerate"),
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "bf16",
            "--dynamo_backend",
            "no",
            "-m",
            "shopmtl.core.cli",
            "train",
            str(SMOKE_CONFIG),
            "--output-dir",
            str(output_dir),
            "tasks.price_bin.prior=tfidf_logreg",
        ],  # fitted by the main process, handed to the other
        timeout=600,
    )
    print(f"\n2-process smoke run (accelerate launch): {seconds:.1f} s wall")
    stdout = completed.stdout
    headers = [line for line in stdout.splitlines() if line.startswith("shopmtl run ")]
    assert len(headers) == 1, stdout  # only the main process prints
    assert "processes: 2" in headers[0]
    assert stdout.count("Test metrics of the best model") == 1

    # One set of files: what a one-process run writes, once, and no staging leftovers.
    assert sorted(p.name for p in output_dir.iterdir()) == [
        "checkpoints",
        "config.yaml",
        "environment.json",
        "manifest.json",
        "metrics.json",
        "model",
        "plugins.json",
    ]
    assert json.loads((output_dir / "environment.json").read_text())["processes"] == 2
    assert not [p for p in output_dir.rglob(".*")]
    assert {p.name for p in (output_dir / "model" / "heads").iterdir()} == {
        f"{t}.safetensors" for t in TASKS
    }
    assert [p.name for p in (output_dir / "model" / "priors").iterdir()] == [
        "price_bin.safetensors"
    ]
    assert sorted(p.name for p in (output_dir / "checkpoints").iterdir()) == ["last"]
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert set(metrics["tasks"]) == set(TASKS)
    assert all(metrics["tasks"][t]["test"] for t in TASKS)
