"""``training.log_with: [tensorboard]``: training curves, the final val/test metrics, the
baselines and the config, read back from the event files TensorBoard wrote."""

from __future__ import annotations

import json

import pytest
import tensorboard  # noqa: F401,E402 -- the [tensorboard] extra, installed by the test command
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def test_tensorboard_gets_curves_final_metrics_baselines_and_config(
    deploy_config_of, toy_plugins, tmp_path
):
    from shopmtl.core.engine import trainer

    output = tmp_path / "run"
    config = deploy_config_of(
        output,
        "training.max_steps=6",
        "training.eval_every=3",
        "training.log_every=2",
        "training.log_with=[tensorboard]",
        "encoder.lora.enabled=false",
        "sharing.kind=hard",
    )
    result = trainer.train(config, toy_plugins, progress=False)

    logs = output / config.run_name
    events = EventAccumulator(str(logs), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "train/toy_value/loss",
        "train/toy_flag/loss",
        "val/toy_value/rmse",
        "val/toy_flag/auc",
    } <= scalars
    steps = [e.step for e in events.Scalars("train/toy_value/loss")]
    assert steps and set(steps) <= {2, 4, 6}  # every log_every steps, when the task had batches
    final = events.Scalars("final/test/toy_value/rmse")
    assert len(final) == 1 and final[0].step == result.best_step
    assert final[0].value == pytest.approx(result.metrics["toy_value"]["test"]["rmse"], rel=1e-6)
    assert "final/val/toy_flag/auc" in scalars
    # the toy tasks declare no baselines; the built-in ones do (see final_values' test below)
    config_text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "run_name: smoke" in config_text and "log_with:\n  - tensorboard" in config_text
    (hparams_file,) = logs.glob(
        "*/hparams.yml"
    )  # accelerate's copy of the hyper-parameters it logged
    hparams = hparams_file.read_text()
    assert "training.max_steps: 6" in hparams
    assert json.loads((output / "metrics.json").read_text())["best_step"] == result.best_step


def test_final_values_flatten_metrics_and_baselines():
    from shopmtl.core.engine.tracking import final_values

    values = final_values(
        {"sales": {"val": {"rmse": 1.0, "note": "x"}, "test": {"rmse": 2, "r2": None}}},
        {"sales": {"lag_1": {"rmse": 3.0}}},
    )
    assert values == {
        "final/val/sales/rmse": 1.0,
        "final/test/sales/rmse": 2.0,
        "baseline/test/sales/lag_1/rmse": 3.0,
    }
