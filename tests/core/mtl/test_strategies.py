"""Multi-task options: loss weightings, PCGrad, MMoE/PLE sharing, and plugin extensions."""

from __future__ import annotations

import dataclasses
import re

import click
import pandas as pd
import pytest
import torch
import toy_tasks
from click.testing import CliRunner
from shopmtl import DerivedFeatures, hookimpl
from shopmtl.core.cli.common import PluginSource
from shopmtl.core.config import ConfigError, load_config
from shopmtl.core.data.features import encode_rows, with_derived
from shopmtl.core.engine.predict import evaluate_run, load_run, predict_frame
from shopmtl.core.engine.trainer import train
from shopmtl.core.mtl.builtin import load_plugins
from shopmtl.core.mtl.sampler import task_probabilities
from shopmtl.core.mtl.surgery import PCGrad
from shopmtl.core.mtl.weightings import UncertaintyWeighting
from shopmtl.registry.spec import MetricSpec
from shopmtl.registry.validation import validate_task

SMOKE = "examples/configs/smoke.yaml"


def toy_config(tmp_path, *overrides):
    return load_config(
        SMOKE,
        [
            "tasks={}",
            f"output_dir={tmp_path}",
            "training.max_steps=12",
            "training.eval_every=6",
            *overrides,
        ],
    )


def test_pcgrad_removes_the_conflicting_component():
    shared = torch.nn.Parameter(torch.zeros(2))
    surgery = PCGrad([shared])
    shared.grad = torch.tensor([1.0, 0.0])
    surgery.capture("a")
    shared.grad = torch.tensor([-1.0, 1.0])
    surgery.capture("b")
    surgery.apply()
    # a projected off b: [1,0] - (-1/2)[-1,1] = [0.5, 0.5]; b off a: [-1,1] - (-1)[1,0] = [0, 1]
    assert torch.allclose(shared.grad, torch.tensor([0.5, 1.5]))


def test_pcgrad_leaves_agreeing_gradients_alone():
    shared = torch.nn.Parameter(torch.zeros(2))
    surgery = PCGrad([shared])
    for task, grad in (("a", [1.0, 0.0]), ("b", [1.0, 1.0])):
        shared.grad = torch.tensor(grad)
        surgery.capture(task)
    surgery.apply()
    assert torch.allclose(shared.grad, torch.tensor([2.0, 1.0]))


def test_uncertainty_weighting_follows_kendall():
    weighting = UncertaintyWeighting(["a", "b"], {"a": 1.0, "b": 2.0}, {})
    with torch.no_grad():
        weighting.log_variance.copy_(torch.tensor([0.0, 1.0]))
    loss = torch.tensor(3.0)
    assert float(weighting("a", loss).detach()) == pytest.approx(3.0)
    assert float(weighting("b", loss).detach()) == pytest.approx(
        2.0 * (torch.exp(torch.tensor(-1.0)) * 3.0 + 1.0)
    )


def test_pcgrad_needs_accumulation(tmp_path, toy_plugins):
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        train(toy_config(tmp_path, "training.gradient_surgery=pcgrad"), toy_plugins, progress=False)


@pytest.mark.parametrize(
    "options",
    [
        ["training.loss_weighting=uncertainty"],
        ["training.gradient_surgery=pcgrad", "training.gradient_accumulation_steps=2"],
        ["sharing.kind=mmoe"],
        ["sharing.kind=ple", "sharing.experts=2"],
    ],
)
def test_options_train_and_round_trip_through_safetensors(tmp_path, toy_plugins, options):
    result = train(toy_config(tmp_path, *options), toy_plugins, progress=False)
    assert result.metrics["toy_flag"]["test"]["auc"] > 0.6  # learns the toy signal, not chance
    reloaded = evaluate_run(load_run(tmp_path, toy_plugins.tasks), "test")
    for task, splits in result.metrics.items():
        for metric, value in splits["test"].items():
            assert reloaded[task][metric] == pytest.approx(value, abs=1e-6)
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))


class ExtensionPlugin:
    """A third party's sampler, weighting, metric and command."""

    @hookimpl
    def register_samplers(self, register):
        register(
            "only_first", lambda sizes, options: {n: float(i == 0) for i, n in enumerate(sizes)}
        )

    @hookimpl
    def register_loss_weightings(self, register):
        register("halved", lambda tasks, weights, options: _Halved())

    @hookimpl
    def register_metrics(self, register):
        register(
            MetricSpec(
                task="toy_flag",
                name="positive_rate",
                direction="info",
                compute=lambda batch: float((batch.predictions[:, 0] >= 0.5).mean()),
            )
        )

    @hookimpl
    def register_commands(self, cli):
        @cli.command(name="hello")
        def hello():
            click.echo("hello from a plugin")


class _Halved(torch.nn.Module):
    def forward(self, task, loss):
        return loss * 0.5


def test_plugin_sampler_weighting_and_metric_are_used(tmp_path):
    plugins = load_plugins([("toy", toy_tasks), ("ext", ExtensionPlugin())], only=[])
    assert "only_first" in plugins.samplers and "halved" in plugins.loss_weightings
    report = next(r for r in plugins.reports if r.name == "ext")
    assert report.extensions["metrics"] == ["toy_flag.positive_rate"]
    config = toy_config(tmp_path, "sampler.kind=only_first", "training.loss_weighting=halved")
    result = train(config, plugins, progress=False)
    assert 0.0 <= result.metrics["toy_flag"]["test"]["positive_rate"] <= 1.0
    probabilities = task_probabilities(
        {"toy_value": 10, "toy_flag": 10}, config.sampler, plugins.samplers
    )
    assert probabilities == {"toy_value": 1.0, "toy_flag": 0.0}


def test_unknown_sampler_names_the_closest(tmp_path, toy_plugins):
    with pytest.raises(ConfigError, match="did you mean 'temperature'"):
        train(toy_config(tmp_path, "sampler.kind=temprature"), toy_plugins, progress=False)


def test_plugin_commands_join_the_cli_and_a_broken_one_is_isolated(monkeypatch):
    from shopmtl.core import cli as cli_module

    class Broken:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("boom")

    plugins = load_plugins([("ext", ExtensionPlugin()), ("broken", Broken())], only=[])
    source = PluginSource(load=lambda ctx, config=None: plugins)
    monkeypatch.setattr(cli_module.cli, "_plugins_added", False)
    before = dict(cli_module.cli.commands)
    try:
        with pytest.warns(UserWarning, match="'broken'.*boom"):
            result = CliRunner().invoke(cli_module.cli, ["hello"], obj=source)
        assert result.exit_code == 0, result.output
        assert "hello from a plugin" in result.output
    finally:
        cli_module.cli.commands.clear()
        cli_module.cli.commands.update(before)
        cli_module.cli._plugins_added = False


def test_sample_weight_scales_a_tasks_share_of_batches(tmp_path, toy_plugins):
    config = toy_config(
        tmp_path,
        "sampler.kind=uniform",
        "tasks.toy_value.sample_weight=3",
        "tasks.toy_flag.sample_weight=1",
    )
    weights = {name: task.sample_weight for name, task in config.tasks.items()}
    probabilities = task_probabilities(
        {"toy_value": 10, "toy_flag": 10}, config.sampler, None, weights
    )
    assert probabilities == pytest.approx({"toy_value": 0.75, "toy_flag": 0.25})
    with pytest.raises(ValueError, match="sample_weight gave every task probability 0"):
        task_probabilities({"toy_value": 10}, config.sampler, None, {"toy_value": 0.0})
    with pytest.raises(Exception, match="sample_weight"):
        toy_config(tmp_path, "tasks.toy_value.sample_weight=-1")


def _word_count(frame):
    return pd.DataFrame(
        {"text_words": frame["text"].str.split().str.len().astype(float)}, index=frame.index
    )


TOY_DERIVED = dataclasses.replace(
    toy_tasks.TOY_REGRESSION,
    name="toy_words",
    numeric=("x", "text_words"),
    derive=DerivedFeatures(("text_words",), _word_count),
)


class DerivedPlugin:
    @hookimpl
    def register_tasks(self, register):
        register(TOY_DERIVED)


def test_derived_features_are_computed_for_training_and_prediction(tmp_path):
    plugins = load_plugins([("derived", DerivedPlugin())], only=[])
    assert plugins.tasks["toy_words"].columns == (
        "row_id",
        "text",
        "x",
        "shop",
        "value",
    )  # not text_words
    result = train(toy_config(tmp_path, "tasks={toy_words: {}}"), plugins, progress=False)
    run = load_run(result.output_dir, plugins.tasks)
    state = run.features["toy_words"]
    # Fitted on the derived train column: the toy texts are two words each.
    assert state.numeric_mean[1] == pytest.approx(2.0) and state.numeric_std[1] == pytest.approx(
        1.0
    )
    raw = pd.DataFrame(
        {"row_id": [1, 2], "text": ["red mug", "blue"], "x": [0.5, 0.5], "shop": ["uk", "uk"]}
    )
    predicted = predict_frame(run, "toy_words", raw)
    assert (
        list(predicted.columns[:4]) == list(raw.columns) and "text_words" not in predicted.columns
    )
    rows = encode_rows(TOY_DERIVED, raw, state, run.bank)
    assert rows.numeric[:, 1].tolist() == pytest.approx([0.0, -1.0])  # (2-2)/1, (1-2)/1


def test_derive_is_validated_and_its_failures_name_the_task():
    stray = dataclasses.replace(TOY_DERIVED, numeric=("x",))
    assert any("text_words" in p and "numeric= or categorical=" in p for p in validate_task(stray))
    assert any(
        "DerivedFeatures" in p
        for p in validate_task(dataclasses.replace(TOY_DERIVED, derive=_word_count))
    )
    broken = dataclasses.replace(
        TOY_DERIVED, derive=DerivedFeatures(("text_words",), lambda f: f[["nope"]])
    )
    with pytest.raises(
        ValueError, match=r"task 'toy_words': its derive.compute failed on 1 rows: KeyError"
    ):
        with_derived(broken, pd.DataFrame({"text": ["a b"]}))
    wrong = dataclasses.replace(
        TOY_DERIVED, derive=DerivedFeatures(("text_words",), lambda f: f[["text"]])
    )
    with pytest.raises(ValueError, match="exactly the columns"):
        with_derived(wrong, pd.DataFrame({"text": ["a b"]}))


class _ScaledPooled(torch.nn.Module):
    """A plugin's sharing kind: each task scales the pooled vector by its own learned factor."""

    def __init__(self, tasks, width, options):
        super().__init__()
        self.scale = torch.nn.ParameterDict({t: torch.nn.Parameter(torch.ones(1)) for t in tasks})
        self.options = dict(options)

    def forward(self, task, pooled):
        return pooled * self.scale[task]


class _CountingSurgery:
    """A plugin's gradient surgery: plain sums, counting the calls the trainer makes."""

    calls = {"capture": 0, "apply": 0}

    def __init__(self, shared, options):
        self.options = dict(options)

    def capture(self, task):
        _CountingSurgery.calls["capture"] += 1

    def apply(self, reduce):
        _CountingSurgery.calls["apply"] += 1


class StrategyPlugin:
    """A third party's sharing kind and gradient surgery (hook API 1.2)."""

    @hookimpl
    def register_sharing_kinds(self, register):
        register("scaled", _ScaledPooled)

    @hookimpl
    def register_gradient_surgeries(self, register):
        register("counting", _CountingSurgery)


def test_plugin_sharing_kind_and_gradient_surgery_are_used_and_round_trip(tmp_path):
    plugins = load_plugins([("toy", toy_tasks), ("strategies", StrategyPlugin())], only=[])
    assert {"hard", "mmoe", "ple", "scaled"} <= set(plugins.sharing_kinds)
    assert {"none", "pcgrad", "counting"} <= set(plugins.gradient_surgeries)
    report = next(r for r in plugins.reports if r.name == "strategies")
    assert report.extensions == {"sharing_kinds": ["scaled"], "gradient_surgeries": ["counting"]}
    _CountingSurgery.calls.update(capture=0, apply=0)
    config = toy_config(
        tmp_path,
        "sharing.kind=scaled",
        "sharing.options={alpha: 2}",
        "training.gradient_surgery=counting",
        "training.gradient_accumulation_steps=2",
    )
    result = train(config, plugins, progress=False)
    assert _CountingSurgery.calls == {"capture": 24, "apply": 12}  # 12 steps of 2 micro-batches
    assert (tmp_path / "model" / "sharing.safetensors").is_file()
    run = load_run(tmp_path, plugins.tasks, plugins.sharing_kinds)
    assert isinstance(run.model.sharing, _ScaledPooled) and run.model.sharing.options["alpha"] == 2
    assert evaluate_run(run, "test") == {t: m["test"] for t, m in result.metrics.items()}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sharing.kind=mmeo", "sharing.kind: no sharing kind named 'mmeo'; did you mean 'mmoe'?"),
        (
            "training.gradient_surgery=pcgard",
            "training.gradient_surgery: no gradient surgery named 'pcgard'; did you mean 'pcgrad'?",
        ),
    ],
)
def test_unknown_sharing_kind_or_surgery_names_the_closest(
    tmp_path, toy_plugins, override, message
):
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(toy_config(tmp_path, override), toy_plugins, progress=False)
