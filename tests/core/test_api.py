"""shopmtl.core.api, the engine's public API for scripts: every name documented, the plugins it
loads are the command's, and what it computes agrees with what a run wrote."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import toy_tasks
from conftest import toy_config
from shopmtl.core import api


@pytest.mark.parametrize("name", api.__all__)
def test_every_public_name_exists_and_is_documented(name):
    value = getattr(api, name)
    assert (inspect.getdoc(value) or "").strip(), f"shopmtl.core.api.{name} has no docstring"


def test_the_plugins_are_the_commands_own():
    plugins = api.load_plugins([("toy", toy_tasks)], only=[])
    assert {"sales", "price_bin", "user_profile", "recommend", "toy_value", "toy_flag"} <= set(
        plugins.tasks
    )
    assert {"temperature", "proportional", "uniform"} <= set(plugins.samplers)
    assert {"hard", "mmoe", "ple"} <= set(plugins.sharing_kinds)
    assert {"static", "uncertainty"} <= set(plugins.loss_weightings)


def test_score_split_reproduces_the_runs_test_metrics(toy_run):
    run = api.load_run(toy_run.output_dir, toy_run.plugins.tasks)
    batches = api.score_split(run, "test")
    assert set(batches) == set(toy_run.result.metrics)
    for name, batch in batches.items():
        spec = run.specs[name]
        written = toy_run.result.metrics[name]["test"][spec.primary_metric]
        again = float(spec.metrics(batch)[spec.primary_metric])
        assert math.isclose(again, written, rel_tol=1e-5, abs_tol=1e-6), (name, again, written)


def test_predict_frame_with_each_scorer_agrees(toy_run):
    run = api.load_run(toy_run.output_dir, toy_run.plugins.tasks)
    frame = api.build_task_data(run.specs["toy_value"], run.config)["test"].head(20)
    default = api.predict_frame(run, "toy_value", frame)
    fp32 = api.predict_frame(run, "toy_value", frame, scorer=api.scorer(run, "fp32"))
    column = default.columns[-1]
    np.testing.assert_allclose(default[column], fp32[column], rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="choose run, fp32 or onnxruntime"):
        api.scorer(run, "tpu")  # type: ignore[arg-type]


def test_plain_training_builds_the_runs_model_and_batches(tmp_path):
    config = toy_config(tmp_path / "run", "tasks.toy_value.weight=1.0", "tasks.toy_flag.weight=1.0")
    plugins = api.load_plugins([("toy", toy_tasks)], only=[])
    parts = api.plain_training(config, plugins, steps=6)
    assert len(parts.batches) == 6 and {n for n, _ in parts.batches} <= {"toy_value", "toy_flag"}
    params = {id(p) for p in parts.model.parameters()}
    assert parts.wide and parts.wide <= params
    parts.model.train()
    name, batch = parts.batches[0]
    _, loss, _ = parts.model(name, batch, parts.losses[name])
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    assert all(ids.shape[0] == mask.shape[0] for ids, mask in parts.buckets(batch))
