"""load_run: clear errors, and another precision in the same process."""

from __future__ import annotations

import pytest
from shopmtl import BuildContext
from shopmtl.core.config import ConfigError
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


def test_load_run_with_another_precision_in_the_same_process(toy_run):
    """Loading a run in fp32 after loading it in bf16 in the same Python process (a notebook
    comparing precisions). BUG before: accelerate's process-wide AcceleratorState refused a
    second precision ("AcceleratorState has already been initialized and cannot be changed")."""
    test = build(BuildContext(settings=None))["test"]
    in_bf16 = predict_frame(
        load_run(toy_run.output_dir, toy_run.plugins.tasks, precision="bf16"), "toy_value", test
    )
    run = load_run(toy_run.output_dir, toy_run.plugins.tasks, precision="no")
    assert run.accelerator.mixed_precision == "no"
    in_fp32 = predict_frame(run, "toy_value", test)
    assert len(in_fp32) == len(in_bf16) == len(test)


def test_load_run_refuses_fp16_without_a_gpu_naming_the_option(toy_run):
    with pytest.raises(ConfigError, match=r"--precision=fp16 needs a CUDA GPU"):
        load_run(toy_run.output_dir, toy_run.plugins.tasks, precision="fp16")


def test_bf16_predictions_come_from_float32_heads(toy_run):
    """Under bf16 the encoder runs in bf16 but the heads in float32, so a regression value is not
    rounded to bf16's 8 significant bits (5.5625 where float32 gives 5.586)."""
    import numpy as np
    import torch

    test = build(BuildContext(settings=None))["test"]
    run = load_run(toy_run.output_dir, toy_run.plugins.tasks, precision="bf16")
    values = predict_frame(run, "toy_value", test)["prediction"].to_numpy(dtype=np.float32)
    as_bf16 = torch.from_numpy(values).to(torch.bfloat16).float().numpy()
    assert (values != as_bf16).mean() > 0.5
