"""load_run: clear errors, and another precision in the same process."""

from __future__ import annotations

import pytest
from shopmtl import BuildContext
from shopmtl.core.engine.predict import RunError, load_run, predict_frame
from toy_tasks import TOY_BINARY, build


def test_load_run_errors_are_clear(toy_run, tmp_path):
    with pytest.raises(RunError, match="not a finished shopmtl run"):
        load_run(tmp_path, toy_run.plugins.tasks)
    with pytest.raises(RunError, match=r"toy_value \(plugin toy\).*install those plugins"):
        load_run(toy_run.output_dir, {"toy_flag": TOY_BINARY})
    run = load_run(toy_run.output_dir, toy_run.plugins.tasks)
    with pytest.raises(RunError, match="has no task 'sales'"):
        run.task("sales")


def test_load_run_with_another_precision_in_the_same_process(toy_run, tmp_path):
    """Loading a run trained with ``mixed_precision: no`` after a bf16 run in the same
    Python process (a notebook comparing two runs). BUG today: accelerate's process-wide
    AcceleratorState refuses a second precision ("AcceleratorState has already been
    initialized and cannot be changed")."""
    import shutil

    import yaml

    copy = tmp_path / "fp32-run"
    shutil.copytree(toy_run.output_dir / "model", copy / "model")
    shutil.copy(toy_run.output_dir / "plugins.json", copy / "plugins.json")
    config = yaml.safe_load((toy_run.output_dir / "config.yaml").read_text())
    assert config["training"]["mixed_precision"] == "bf16"  # the session's runs are bf16
    config["training"]["mixed_precision"] = "no"
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    run = load_run(copy, toy_run.plugins.tasks)
    test = build(BuildContext(settings=None))["test"]
    assert len(predict_frame(run, "toy_value", test)) == len(test)
