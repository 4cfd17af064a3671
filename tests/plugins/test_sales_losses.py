"""The quality options of the built-in plugins: the sales losses (``tasks.sales.settings.loss``)
and user_profile's per-label decision thresholds calibrated on val.

Unit checks of each loss (NaN labels masked, predictions on the log1p scale), then short
runs on the smoke config -- one task at a time, so each trains and evaluates in seconds.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SMOKE_CONFIG
from shopmtl import BuildContext, EvalBatch
from shopmtl.core.config import ConfigError, load_config
from shopmtl.core.data.task_config import configure_task
from shopmtl.core.engine.predict import load_run, predict_frame
from shopmtl.core.engine.trainer import train
from shopmtl.core.model import outputs as blocks
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.plugins import sales, user_profile
from shopmtl.plugins.builtin import BUILTIN_PLUGINS
from shopmtl.registry.dryrun import check_head_and_loss
from shopmtl.registry.validation import validate_task

COUNT_LOSSES = ("poisson", "tweedie", "zero_inflated_lognormal")


def configured(loss: str):
    return configure_task(
        sales.SALES, load_config(SMOKE_CONFIG, [f"tasks.sales.settings.loss={loss}"])
    )


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(BUILTIN_PLUGINS, only=[])


# --- sales losses: units ------------------------------------------------------------------------


def test_loss_setting_is_validated_and_configures_the_spec() -> None:
    default = configured("mse")  # the kind's masked MSE on log1p, identity prediction: as before
    assert dataclasses.replace(default, configure=sales.configure_sales) == sales.SALES
    assert (default.loss, default.outputs, default.predict) == (None, None, None)
    for loss in COUNT_LOSSES:
        spec = configured(loss)
        assert spec.configure is None and spec.loss is not None and spec.predict is not None
        assert (
            spec.n_outputs == (3 if loss == "zero_inflated_lognormal" else 1)
            and spec.n_predictions == 1
        )
        assert check_head_and_loss(spec) == []  # registration's dry run, on this variant
    assert validate_task(sales.SALES) == []
    with pytest.raises(ConfigError, match="loss"):
        configure_task(sales.SALES, load_config(SMOKE_CONFIG, ["tasks.sales.settings.loss=poison"]))
    with pytest.raises(ValueError, match="tweedie_power"):
        sales.SalesSettings(tweedie_power=2.5)


@pytest.mark.parametrize("loss", COUNT_LOSSES)
def test_losses_mask_nan_labels(loss: str) -> None:
    spec = configured(loss)
    gen = torch.Generator().manual_seed(0)
    raw = torch.randn(6, spec.n_outputs, generator=gen, requires_grad=True)
    labels = torch.tensor(
        [[0.0], [math.nan], [math.log1p(3)], [math.log1p(250)], [math.nan], [0.0]]
    )
    value = spec.loss(raw, labels)
    assert value.dim() == 0 and torch.isfinite(value)
    keep = ~torch.isnan(labels[:, 0])
    assert value.item() == pytest.approx(
        spec.loss(raw[keep], labels[keep]).item()
    )  # NaN rows add nothing
    value.backward()
    assert torch.isfinite(raw.grad).all() and (raw.grad[~keep] == 0).all()
    empty = spec.loss(raw[:2], torch.full((2, 1), math.nan))  # every label missing: 0, graph kept
    assert empty.item() == 0.0 and empty.requires_grad


def test_count_losses_are_minimised_at_the_true_mean_and_predict_log1p_units() -> None:
    units = torch.tensor([0.0, 1.0, 7.0, 120.0])
    labels = torch.log1p(units).unsqueeze(-1)
    for loss in ("poisson", "tweedie"):
        spec = configured(loss)
        log_mean = torch.log(units.clamp(min=1e-6)).unsqueeze(-1)
        best = spec.loss(log_mean, labels).item()
        assert best == pytest.approx(
            0.0, abs=2e-3
        )  # half deviance: 0 at the truth (float32 rounding)
        assert (
            spec.loss(log_mean + 0.3, labels).item() > best
            and spec.loss(log_mean - 0.3, labels).item() > best
        )
        got = blocks.predict(spec, log_mean)
        assert got.shape == (4, 1) and torch.allclose(
            got, labels, atol=1e-5
        )  # log1p(expected units)
    spec = configured("zero_inflated_lognormal")
    # p = 0.8, mu = log 10, sigma = 0.5: mean = 0.8 * exp(log 10 + 0.125)
    raw = torch.tensor([[math.log(0.8 / 0.2), math.log(10.0), math.log(math.expm1(0.5))]])
    assert blocks.predict(spec, raw).item() == pytest.approx(
        math.log1p(0.8 * 10 * math.exp(0.125)), rel=1e-5
    )
    # The NLL prefers the generating parameters to shifted ones on a sample from them.
    rng = np.random.default_rng(0)
    sample = np.where(
        rng.random(4000) < 0.8, np.round(np.exp(rng.normal(math.log(10), 0.5, 4000))), 0.0
    )
    y = torch.tensor(np.log1p(sample), dtype=torch.float32).unsqueeze(-1)
    at = spec.loss(raw.expand(4000, 3), y).item()
    for shift in ([1.0, 0, 0], [0, 0.5, 0], [0, 0, 1.0], [-1.0, 0, 0], [0, -0.5, 0]):
        assert spec.loss((raw + torch.tensor(shift)).expand(4000, 3), y).item() > at, shift


# --- sales losses: short runs -------------------------------------------------------------------


@pytest.mark.parametrize("loss", COUNT_LOSSES)
def test_sales_trains_with_each_loss_and_predicts_on_the_log1p_scale(
    tmp_path, plugins, loss: str
) -> None:
    config = load_config(
        SMOKE_CONFIG,
        [
            "tasks={}",
            "tasks.sales.max_train_examples=512",
            "tasks.sales.max_eval_examples=256",
            f"tasks.sales.settings.loss={loss}",
            "training.max_steps=40",
            "training.eval_every=20",
            "training.batch_size=32",
            "training.head_learning_rate=1.0e-2",
            f"output_dir={tmp_path}",
        ],
    )
    result = train(config, plugins, progress=False)
    test = result.metrics["sales"]["test"]
    assert all(math.isfinite(test[m]) for m in ("rmse", "mae", "mae_units", "r2"))

    # The saved run rebuilds the loss's head (ZILN: 3 outputs) and predicts log1p(units).
    run = load_run(tmp_path, plugins.tasks)
    assert run.specs["sales"].n_outputs == (3 if loss == "zero_inflated_lognormal" else 1)
    frame = (
        sales.build_sales(BuildContext(settings=sales.SalesSettings()))
        .splits["val"]
        .sample(500, random_state=0)
    )
    out = predict_frame(run, "sales", frame)
    prediction = out["prediction"].to_numpy()
    assert np.isfinite(prediction).all() and (prediction >= 0).all()
    label = frame["label"].to_numpy()
    assert (
        label.min() <= prediction.mean() <= label.max()
    )  # in the label range: log1p, not units or logits
    assert out["units"].to_numpy() == pytest.approx(np.expm1(prediction), rel=1e-6)


# --- user_profile thresholds --------------------------------------------------------------------


def batch(labels: np.ndarray, predictions: np.ndarray, calibration=None) -> EvalBatch:
    frame = pd.DataFrame(labels, columns=user_profile.LABELS[: labels.shape[1]])
    return EvalBatch(
        "val", frame, predictions, labels, lambda f: None, calibration=calibration or {}
    )


def test_calibration_picks_each_labels_best_threshold() -> None:
    rng = np.random.default_rng(0)
    n = 400
    labels = (rng.random((n, 20)) < 0.3).astype(float)
    scores = np.clip(
        0.25 * labels + rng.normal(0.2, 0.08, (n, 20)), 0, 1
    )  # positives near 0.45: 0.5 is too high
    labels[:, 19] = 0.0  # no positive in val: keeps 0.5
    labels[5, 3] = np.nan  # a missing cell is skipped
    fitted = user_profile.calibrate_user_profile(batch(labels, scores))
    thresholds = fitted["thresholds"]
    assert list(thresholds) == list(user_profile.LABELS)
    assert thresholds["MUG"] == 0.5
    assert all(t in user_profile.THRESHOLD_GRID for t in thresholds.values())
    assert all(0.2 <= thresholds[w] <= 0.45 for w in user_profile.LABELS[:19])
    plain = user_profile.user_profile_metrics(batch(labels, scores))
    tuned = user_profile.user_profile_metrics(batch(labels, scores, fitted))
    assert tuned["macro_f1"] > plain["macro_f1"] and tuned["map"] == plain["map"]
    assert user_profile.f1_at_half(batch(labels, scores, fitted)) == pytest.approx(
        (plain["micro_f1"], plain["macro_f1"])
    )
    decoded = user_profile.decode_user_profile(scores[:3], fitted)
    expected = [
        " ".join(w for w, s in zip(user_profile.LABELS, row) if s >= thresholds[w])
        for row in scores[:3]
    ]
    assert decoded["predicted_labels"].tolist() == expected
    assert user_profile.decode_user_profile(scores[:3])["predicted_labels"].tolist() == [
        " ".join(w for w, s in zip(user_profile.LABELS, row) if s >= 0.5) for row in scores[:3]
    ]


def test_user_profile_thresholds_are_fitted_saved_and_used(tmp_path, plugins) -> None:
    config = load_config(
        SMOKE_CONFIG,
        [
            "tasks={}",
            "tasks.user_profile.max_train_examples=256",
            "tasks.user_profile.max_eval_examples=128",
            "training.max_steps=16",
            "training.eval_every=8",
            f"output_dir={tmp_path}",
        ],
    )
    result = train(config, plugins, progress=False)
    saved = json.loads((tmp_path / "model" / "calibration.json").read_text())["user_profile"][
        "thresholds"
    ]
    assert list(saved) == list(user_profile.LABELS)
    assert all(t in user_profile.THRESHOLD_GRID for t in saved.values())
    val, test = result.metrics["user_profile"]["val"], result.metrics["user_profile"]["test"]
    assert (
        val["macro_f1"] >= val["macro_f1_at_05"]
    )  # the grid holds 0.5: no label can get worse on val
    assert test["macro_f1"] != test["macro_f1_at_05"]
    # predict decodes with the saved thresholds
    run = load_run(tmp_path, plugins.tasks)
    assert run.calibration["user_profile"]["thresholds"] == saved
    frame = user_profile.build_user_profile(BuildContext(settings=None)).splits["test"].head(20)
    out = predict_frame(run, "user_profile", frame)
    p = out[[f"p_{w}" for w in user_profile.LABELS]].to_numpy()
    chosen = p >= np.array([saved[w] for w in user_profile.LABELS])[None, :]
    assert out["predicted_labels"].tolist() == [
        " ".join(w for w, c in zip(user_profile.LABELS, row) if c) for row in chosen
    ]


def test_configure_may_not_change_the_schema() -> None:
    broken = dataclasses.replace(
        sales.SALES, configure=lambda s: dataclasses.replace(sales.SALES, labels=("units",))
    )
    with pytest.raises(ValueError, match="configure changed labels"):
        configure_task(broken, load_config(SMOKE_CONFIG))
    assert any("configure changed labels" in p for p in validate_task(broken))
