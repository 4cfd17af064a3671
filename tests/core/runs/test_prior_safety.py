"""A run's classical prior is arrays and JSON: no pickle in a run directory, and an old or
planted pickle is refused -- never unpickled -- by every command that opens the run."""

from __future__ import annotations

import dataclasses
import shutil

import joblib
import numpy as np
import pytest
from conftest import toy_config
from shopmtl import Prior, hookimpl
from shopmtl.core.cli.common import PluginSource
from shopmtl.core.data.priors import FittedPrior, prior_outputs
from shopmtl.core.engine import trainer
from shopmtl.core.engine.predict import evaluate_run, load_run
from shopmtl.core.runs import manifest
from shopmtl.plugins.shared.portable.trees import BoostedTrees
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.testing import run_cli
from toy_tasks import TOY_BINARY, TOY_REGRESSION, build


def _fit_trees(train, val):
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=20, random_state=0)
    return BoostedTrees.of(model.fit(train[["x"]].to_numpy(), train["value"].to_numpy()))


TREES = Prior(
    "gradient boosting on x",
    fit=_fit_trees,
    predict=lambda trees, frame: trees.predict(frame[["x"]].to_numpy(dtype=float)),
    state=lambda trees: trees.state(),
    from_state=BoostedTrees.from_state,
)
WITH_TREES = dataclasses.replace(TOY_REGRESSION, priors={"trees": TREES})


class Plugin:
    @hookimpl
    def register_tasks(self, register):
        register(WITH_TREES)
        register(TOY_BINARY)


PLUGINS = load_plugins([("trees", Plugin())], only=[])


def _context():
    return type("Ctx", (), {"settings": None})()


@pytest.fixture(scope="module")
def prior_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("priors") / "run"
    config = toy_config(out, "tasks={toy_value: {prior: trees}}", "training.max_steps=10")
    result = trainer.train(config, PLUGINS, progress=False)
    return out, result


def _looks_pickled(data: bytes) -> bool:
    return (len(data) >= 2 and data[0] == 0x80 and data[1] in (2, 3, 4, 5)) or data.startswith(
        b"PK\x03\x04"
    )


def test_a_run_with_a_prior_holds_no_pickle_and_predicts_the_same_after_reload(prior_run):
    out, result = prior_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert (out / "model" / "priors" / "toy_value.safetensors") in files
    assert not [p for p in files if p.suffix in {".joblib", ".pkl", ".pickle", ".pt", ".bin"}]
    assert not [p for p in files if _looks_pickled(p.read_bytes()[:4])]

    run = load_run(out, PLUGINS.tasks)
    fitted = run.features["toy_value"].prior
    assert isinstance(fitted.model, BoostedTrees)
    # The prior the run fitted, fitted again in memory (same rows, same seed), predicts bit for bit
    # what the reloaded one does; so do the model's metrics on the test split.
    test = build(_context())["test"]
    again = TREES.fit(build(_context())["train"], build(_context())["val"])
    np.testing.assert_array_equal(
        prior_outputs(WITH_TREES, fitted, test),
        prior_outputs(WITH_TREES, FittedPrior("trees", again), test),
    )
    metrics = evaluate_run(run, "test")["toy_value"]
    for name, value in result.metrics["toy_value"]["test"].items():
        assert metrics[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


class Payload:
    """Unpickling this creates the marker file: the proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def planted(prior_run, tmp_path):
    """A copy of the run whose prior is replaced by a malicious pickle where the old loader looked,
    its manifest re-written to list it (what someone handing over a doctored run would do)."""
    run = tmp_path / "planted"
    shutil.copytree(prior_run[0], run)
    model = run / "model"
    (model / "priors" / "toy_value.safetensors").unlink()
    marker = tmp_path / "marker"
    joblib.dump(Payload(marker), model / "priors" / "toy_value.joblib")
    manifest.write_manifest(model)
    manifest.write_run_manifest(run)  # the run's own manifest too: only the loader can refuse now
    return run, marker


def _commands(run, tmp_path):
    rows = tmp_path / "rows.csv"
    build(_context())["test"].drop(columns=["value"]).to_csv(rows, index=False)
    return {
        "predict": [
            "predict",
            str(run),
            "--task",
            "toy_value",
            "--input",
            str(rows),
            "--output",
            str(tmp_path / "out.csv"),
        ],  # fmt: skip
        "serve": ["serve", str(run), "--port", "0"],
        "evaluate": ["evaluate", str(run)],
        "export hf": ["export", str(run), "--format", "hf", "--output", str(tmp_path / "hf")],
        "export onnx": ["export", str(run), "--format", "onnx", "--output", str(tmp_path / "onnx")],
        "report": ["report", str(run)],
        "train --from": [
            "train",
            "examples/configs/smoke.yaml",
            "tasks={toy_flag: {}}",
            "training.max_steps=2",
            "encoder.freeze=true",
            "--from",
            str(run),
            "--output-dir",
            str(tmp_path / "new"),
        ],  # fmt: skip
    }


def test_every_command_refuses_a_planted_pickle_in_one_line_and_never_unpickles_it(
    planted, tmp_path
):
    run, marker = planted
    source = PluginSource(load=lambda ctx, config=None: PLUGINS)
    for name, args in _commands(run, tmp_path).items():
        result = run_cli(*args, obj=source)
        lines = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
        assert result.exit_code == 1, (name, result.output)
        assert (
            len(lines) == 1 and "toy_value.joblib" in lines[0] and "--allow-pickle" in lines[0]
        ), (
            name,
            result.output,
        )
        assert "Traceback" not in result.output, name
        assert not marker.exists(), f"{name} unpickled the planted file"
    assert not (tmp_path / "hf").exists() and not (tmp_path / "onnx").exists()
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "new" / "model").exists()


def test_a_path_in_features_json_cannot_lead_out_of_the_run(prior_run, tmp_path):
    import json

    run = tmp_path / "traversal"
    shutil.copytree(prior_run[0], run)
    features = run / "model" / "features.json"
    data = json.loads(features.read_text())
    data["../../x"] = data["toy_value"]
    features.write_text(json.dumps(data))
    manifest.write_run_manifest(run)  # re-listed, so the name itself must be refused
    result = run_cli("evaluate", str(run), obj=PluginSource(load=lambda ctx, config=None: PLUGINS))
    assert result.exit_code == 1 and "'../../x', which is not a task name" in result.output

    linked = tmp_path / "linked"
    shutil.copytree(prior_run[0], linked)
    prior = linked / "model" / "priors" / "toy_value.safetensors"
    outside = tmp_path / "outside.safetensors"
    shutil.move(prior, outside)
    prior.symlink_to(outside)
    result = run_cli(
        "evaluate", str(linked), obj=PluginSource(load=lambda ctx, config=None: PLUGINS)
    )
    assert result.exit_code == 1 and "points outside the run directory" in result.output, (
        result.output
    )


def test_allow_pickle_opens_an_old_run_and_writes_no_pickle_onward(prior_run, tmp_path):
    """A run saved before hook API 1.5 (a joblib FittedPrior) opens with --allow-pickle only."""
    run = tmp_path / "old"
    shutil.copytree(prior_run[0], run)
    model = run / "model"
    loaded = load_run(prior_run[0], PLUGINS.tasks).features["toy_value"].prior
    (model / "priors" / "toy_value.safetensors").unlink()
    joblib.dump(FittedPrior("trees", loaded.model), model / "priors" / "toy_value.joblib")
    manifest.write_manifest(model)
    (run / "manifest.json").unlink()  # a run that old has no manifest of every file either
    source = PluginSource(load=lambda ctx, config=None: PLUGINS)

    unverified = run_cli("evaluate", str(run), "--json", obj=source)
    assert unverified.exit_code == 1 and "--trust-unverified" in unverified.output
    refused = run_cli("evaluate", str(run), "--json", "--trust-unverified", obj=source)
    assert refused.exit_code == 1 and "--allow-pickle" in refused.output
    opened = run_cli(
        "evaluate", str(run), "--json", "--trust-unverified", "--allow-pickle", obj=source
    )
    assert opened.exit_code == 0, opened.output
    exported = run_cli("export", str(run), "--format", "hf", "--output", str(tmp_path / "hf"),
                       "--trust-unverified", "--allow-pickle", obj=source)  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert [p.name for p in (tmp_path / "hf" / "priors").iterdir()] == ["toy_value.safetensors"]


def test_train_from_carries_the_prior_file_with_its_head(prior_run, tmp_path):
    """A head carried over by ``train --from`` brings its prior file along, unchanged."""
    added = tmp_path / "added"
    config = toy_config(
        added,
        "tasks={toy_flag: {}}",
        "training.max_steps=4",
        "training.eval_every=4",
        f"init_from={prior_run[0]}",
        "encoder.freeze=true",
    )
    trainer.train(config, PLUGINS, progress=False)
    source = prior_run[0] / "model" / "priors" / "toy_value.safetensors"
    carried = added / "model" / "priors" / "toy_value.safetensors"
    assert carried.read_bytes() == source.read_bytes()
    test = build(_context())["test"]
    before = load_run(prior_run[0], PLUGINS.tasks, tasks=["toy_value"]).features["toy_value"].prior
    after = load_run(added, PLUGINS.tasks, tasks=["toy_value"])
    assert list(after.specs) == ["toy_value"]  # only the requested task (and its prior) was opened
    np.testing.assert_array_equal(
        prior_outputs(WITH_TREES, after.features["toy_value"].prior, test),
        prior_outputs(WITH_TREES, before, test),
    )
