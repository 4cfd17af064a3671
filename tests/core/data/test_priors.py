"""Classical priors: out-of-fold on train, fitted on all train rows elsewhere, saved and verified with the run."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import toy_config
from shopmtl import Prior, PriorState
from shopmtl.core.data.prepare import prepare_task
from shopmtl.core.data.priors import PriorError, fit_prior
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.data.trainsplit import kept_rows
from shopmtl.core.engine import trainer
from shopmtl.core.engine.predict import load_run, predict_frame
from shopmtl.core.model.encoder import load_tokenizer
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.core.runs.manifest import CorruptRunError
from shopmtl.registry.validation import validate_task
from toy_tasks import TOY_REGRESSION, build


def _memorise(train: pd.DataFrame, val: pd.DataFrame) -> frozenset[int]:
    return frozenset(train["row_id"].tolist())


def _seen(fitted: frozenset[int], frame: pd.DataFrame) -> np.ndarray:
    """1 for each row the prior was fitted on: it reveals which rows a fold saw."""
    return frame["row_id"].isin(fitted).to_numpy(dtype=float)


def _fit_line(train: pd.DataFrame, val: pd.DataFrame) -> np.ndarray:
    keep = train["x"].notna()
    slope, intercept = np.polyfit(train.loc[keep, "x"], train.loc[keep, "value"], 1)
    return np.array([slope, intercept])


def _line(fitted: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
    return fitted[0] * frame["x"].fillna(0.0).to_numpy() + fitted[1]


MEMORY = Prior(
    "remembers its train rows",
    fit=_memorise,
    predict=_seen,
    state=lambda rows: PriorState({"rows": np.array(sorted(rows), dtype=np.int64)}),
    from_state=lambda state: frozenset(state.arrays["rows"].tolist()),
)
LINE = Prior(
    "least squares on x",
    fit=_fit_line,
    predict=_line,
    state=lambda line: PriorState({"line": line}),
    from_state=lambda state: state.arrays["line"],
)
WITH_PRIORS = dataclasses.replace(
    TOY_REGRESSION,
    priors={"memory": MEMORY, "line": LINE, "by_shop": dataclasses.replace(MEMORY, group="shop")},
)


def _frames():
    data = build(type("Ctx", (), {"settings": None})())
    return data["train"], data["val"]


def test_train_rows_get_predictions_from_folds_that_never_saw_them():
    train, val = _frames()
    fitted, oof = fit_prior(WITH_PRIORS, "memory", train, val, folds=5, seed=0)
    assert oof.shape == (len(train), 1) and not oof.any()  # no row was in its own fold's fit
    assert (_seen(fitted.model, train) == 1).all()  # the kept prior was fitted on every train row


def test_group_folds_keep_a_group_out_of_the_fit_that_predicts_it():
    train, val = _frames()
    shops = dataclasses.replace(
        MEMORY,
        fit=lambda t, v: frozenset(t["shop"]),
        predict=lambda f, frame: frame["shop"].isin(f).to_numpy(dtype=float),
        state=lambda f: PriorState(meta={"shops": sorted(f)}),
        from_state=lambda state: frozenset(state.meta["shops"]),
    )
    plain = dataclasses.replace(WITH_PRIORS, priors={"shops": shops})
    grouped = dataclasses.replace(
        WITH_PRIORS, priors={"shops": dataclasses.replace(shops, group="shop")}
    )
    assert fit_prior(plain, "shops", train, val, folds=3, seed=0)[
        1
    ].all()  # every fold saw every shop
    assert not fit_prior(grouped, "shops", train, val, folds=3, seed=0)[
        1
    ].any()  # 3 shops, 3 folds: never


@pytest.mark.parametrize(
    ("prior", "words"),
    [
        (
            dataclasses.replace(LINE, predict=lambda f, frame: np.zeros((len(frame), 2))),
            "predicted shape",
        ),
        (
            dataclasses.replace(LINE, predict=lambda f, frame: np.full(len(frame), np.nan)),
            "NaN or infinite",
        ),
        (
            dataclasses.replace(LINE, fit=lambda t, v: 1 / 0),
            "fitting prior 'bad' failed: ZeroDivisionError",
        ),
    ],
)
def test_a_broken_prior_is_named_with_its_task(prior, words):
    train, val = _frames()
    with pytest.raises(PriorError, match=words) as caught:
        fit_prior(
            dataclasses.replace(TOY_REGRESSION, priors={"bad": prior}),
            "bad",
            train,
            val,
            folds=3,
            seed=0,
        )
    assert "toy_value" in str(caught.value) and "'bad'" in str(caught.value)


def test_an_unknown_prior_lists_the_offered_ones():
    train, val = _frames()
    with pytest.raises(
        PriorError, match=r"tasks.toy_value.prior.*no prior 'lines'.*offers: by_shop, line, memory"
    ):
        fit_prior(WITH_PRIORS, "lines", train, val, folds=3, seed=0)


def test_registration_checks_the_priors():
    bad = dataclasses.replace(
        TOY_REGRESSION,
        priors={"Bad-Name": LINE, "odd": print, "grouped": dataclasses.replace(LINE, group="nope")},
    )
    problems = "\n".join(validate_task(bad))
    assert "prior name 'Bad-Name'" in problems
    assert "priors['odd'] is" in problems and "not a Prior" in problems
    assert "priors['grouped'].group 'nope' is not a column" in problems
    assert validate_task(WITH_PRIORS) == []


def test_prepared_train_rows_read_the_out_of_fold_prior_and_evaluation_rows_the_full_one(tmp_path):
    config = toy_config(tmp_path / "run", "tasks={toy_value: {prior: line, prior_folds: 4}}")
    bank = TextBank(load_tokenizer(config.encoder.name), config.encoder.max_length)
    task = prepare_task(WITH_PRIORS, config, bank)
    full = task.state.prior.model
    np.testing.assert_allclose(
        task.rows["test"].prior[:, 0], _line(full, task.data["test"]), rtol=1e-5
    )
    out_of_fold, expected = (
        task.rows["train"].prior[:, 0],
        fit_prior(
            WITH_PRIORS, "line", task.data["train"], task.data["val"], folds=4, seed=config.seed
        )[1],
    )
    np.testing.assert_array_equal(out_of_fold, expected[:, 0])
    assert not np.allclose(
        out_of_fold, _line(full, task.data["train"])
    )  # not the fit that saw these rows


def _plugins():
    from shopmtl import hookimpl

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(WITH_PRIORS)

    return load_plugins([("priors", Plugin())], only=[])


def test_a_run_with_a_prior_saves_it_verified_and_predicts_with_it(tmp_path):
    out = tmp_path / "run"
    plugins = _plugins()
    result = trainer.train(
        toy_config(out, "tasks={toy_value: {prior: line}}"), plugins, progress=False
    )
    model = out / "model"
    assert json.loads((model / "features.json").read_text())["toy_value"]["prior"] == "line"
    assert (
        "priors/toy_value.safetensors" in json.loads((model / "manifest.json").read_text())["files"]
    )

    run = load_run(out, plugins.tasks)
    test = build(type("Ctx", (), {"settings": None})())["test"]
    predicted = predict_frame(run, "toy_value", test.drop(columns=["value"]))[
        "prediction"
    ].to_numpy()
    rmse = float(np.sqrt(np.mean((predicted - test["value"].to_numpy()) ** 2)))
    assert rmse == pytest.approx(result.metrics["toy_value"]["test"]["rmse"], rel=1e-3)

    # The head adds its output to the prior's: with the head's output zeroed, the model is the prior.
    head = run.model.heads["toy_value"]
    for parameter in head.parameters():
        torch.nn.init.zeros_(parameter)
    zeroed = predict_frame(run, "toy_value", test.drop(columns=["value"]))["prediction"].to_numpy()
    np.testing.assert_allclose(
        zeroed, _line(run.features["toy_value"].prior.model, test), rtol=1e-4, atol=1e-4
    )

    (model / "priors" / "toy_value.safetensors").write_bytes(b"not the fitted prior")
    with pytest.raises(CorruptRunError, match="toy_value.safetensors"):
        load_run(out, plugins.tasks)


def test_a_capped_train_split_still_fits_the_prior_on_every_train_row(tmp_path):
    config = toy_config(
        tmp_path / "run", "tasks={toy_value: {prior: memory, max_train_examples: 100}}"
    )
    bank = TextBank(load_tokenizer(config.encoder.name), config.encoder.max_length)
    task = prepare_task(WITH_PRIORS, config, bank)
    assert len(task.rows["train"]) == 100
    assert task.state.prior.model == frozenset(
        range(240)
    )  # all of train, not the network's 100 rows
    assert not task.rows[
        "train"
    ].prior.any()  # yet each of those 100 rows was predicted out of fold
    assert task.rows[
        "test"
    ].prior.all()  # test's row ids 0..79 are among the train ids the prior saw


def test_exports_carry_the_prior(tmp_path):
    from shopmtl.core.deploy.export_hf import export_hf
    from shopmtl.core.deploy.export_onnx import export_onnx

    plugins = _plugins()
    out = tmp_path / "run"
    trainer.train(
        toy_config(out, "tasks={toy_value: {prior: line}}", "training.mixed_precision=no"),
        plugins,
        progress=False,
    )
    run = load_run(out, plugins.tasks)
    # ONNX: the head graph takes the prior's outputs as an input; the export checks it against torch on test rows.
    assert export_onnx(run, tmp_path / "onnx").max_abs_difference <= 1e-3
    manifest = json.loads((tmp_path / "onnx" / "onnx" / "manifest.json").read_text())
    assert manifest["tasks"]["toy_value"]["inputs"][-1] == "prior"
    # HF: the fitted prior travels beside the heads, written again from the loaded one (an
    # export copies no file of the run byte for byte), identical to the run's.
    export_hf(run, tmp_path / "hf")
    assert (tmp_path / "hf" / "priors" / "toy_value.safetensors").read_bytes() == (
        out / "model" / "priors" / "toy_value.safetensors"
    ).read_bytes()


def test_prior_max_rows_fits_the_prior_on_a_sample_that_holds_the_networks_rows(tmp_path):
    config = toy_config(
        tmp_path / "run",
        "tasks={toy_value: {prior: memory, max_train_examples: 100, prior_max_rows: 150}}",
    )
    bank = TextBank(load_tokenizer(config.encoder.name), config.encoder.max_length)
    task = prepare_task(WITH_PRIORS, config, bank)
    fitted_on = task.state.prior.model
    assert len(fitted_on) == 150 and fitted_on == frozenset(
        kept_rows(240, 150, config.seed).tolist()
    )
    assert (
        set(task.train.positions().tolist()) <= fitted_on
    )  # the network's 100 rows are among them
    assert not task.rows["train"].prior.any()  # and each was predicted by a fold that never saw it


def test_network_rows_beyond_prior_max_rows_get_the_fitted_priors_output(tmp_path):
    config = toy_config(
        tmp_path / "run",
        "tasks={toy_value: {prior: line, max_train_examples: 100, "
        "prior_max_rows: 40, prior_folds: 4}}",
    )
    bank = TextBank(load_tokenizer(config.encoder.name), config.encoder.max_length)
    task = prepare_task(WITH_PRIORS, config, bank)
    fitted_rows, network = kept_rows(240, 40, config.seed), task.train.positions()
    train = task.data["train"]
    inside = np.isin(network, fitted_rows)
    assert inside.sum() == 40 and (~inside).sum() == 60
    expected = fit_prior(
        WITH_PRIORS,
        "line",
        train.iloc[fitted_rows].reset_index(drop=True),
        task.data["val"],
        folds=4,
        seed=config.seed,
    )[1][:, 0]
    np.testing.assert_array_equal(task.rows["train"].prior[inside, 0], expected)  # out of fold
    outside = train.iloc[network[~inside]]
    np.testing.assert_allclose(
        task.rows["train"].prior[~inside, 0], _line(task.state.prior.model, outside), rtol=1e-6
    )
