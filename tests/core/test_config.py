"""The run configuration (shopmtl.core.config) and the task-level checks in core.prepare.

Every mistake a person can make in a config must fail before any work starts, with a
message that names the file, the key and the fix (the closest valid key for a typo).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import SMOKE_CONFIG, toy_plugin_set
from shopmtl.core.cli import cli
from shopmtl.core.cli.common import PluginSource
from shopmtl.core.config import (
    Config,
    ConfigError,
    TaskConfig,
    closest_key,
    default_config_path,
    load_config,
    validate_config,
)
from shopmtl.core.data.task_config import select_tasks, task_settings
from toy_tasks import TOY_BINARY, TOY_REGRESSION, ToySettings

BUILTIN_TASKS = {"sales", "price_bin", "user_profile", "recommend"}


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def config_error(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(*args, **kwargs)
    return str(caught.value)


# ----------------------------------------------------------------------------- loading


def test_default_config_loads_and_validates():
    config = load_config()
    assert isinstance(config, Config)
    assert default_config_path().is_file()
    assert set(config.tasks) == BUILTIN_TASKS
    assert all(isinstance(t, TaskConfig) for t in config.tasks.values())
    assert config.encoder.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert not config.encoder.random_init
    assert config.resolved_output_dir() == Path("runs") / config.run_name
    # The dump of a validated config validates again to the same config (config.yaml of a run).
    assert validate_config(config.model_dump(mode="json")) == config


def test_best_config_is_the_default_run_with_more_steps():
    """examples/configs/best.yaml is what benchmarks/RESULTS.md measured: the default run at 1,200 steps."""
    best = load_config(SMOKE_CONFIG.parent / "best.yaml").model_dump(mode="json")
    default = load_config().model_dump(mode="json")
    assert (best["run_name"], best["training"]["max_steps"], best["training"]["eval_every"]) == (
        "best",
        1200,
        400,
    )
    best["run_name"] = default["run_name"]
    best["training"].update(
        max_steps=default["training"]["max_steps"], eval_every=default["training"]["eval_every"]
    )
    assert best == default
    assert all(
        task["prior"] for task in default["tasks"].values()
    )  # every built-in task starts from its peer


def test_smoke_config_loads():
    config = load_config(SMOKE_CONFIG)
    assert set(config.tasks) == BUILTIN_TASKS
    assert config.encoder.random_init
    assert config.training.max_steps <= 50


def test_yaml_file_and_dotted_overrides(tmp_path):
    path = write_yaml(
        tmp_path / "run.yaml",
        {
            "run_name": "mine",
            "tasks": {"sales": {"max_train_examples": 100}, "price_bin": None},
            "training": {"batch_size": 8, "max_steps": 50},
        },
    )
    config = load_config(
        path,
        [
            "training.max_steps=7",
            "tasks.sales.weight=2",
            "encoder.max_length=64",
            "sampler.kind=uniform",
            "tasks.recommend.settings.k=5",
        ],
    )
    assert config.run_name == "mine"
    assert config.training.max_steps == 7  # the override wins over the file
    assert config.training.batch_size == 8  # the rest of the file stays
    assert config.tasks["sales"].weight == 2.0
    assert config.tasks["sales"].max_train_examples == 100  # a nested override keeps its siblings
    assert config.tasks["price_bin"] == TaskConfig()  # `price_bin:` with no value: defaults
    assert config.tasks["recommend"].settings == {"k": 5}  # a task the file did not name
    assert config.encoder.max_length == 64
    assert config.sampler.kind == "uniform"
    assert config.resolved_output_dir() == Path("runs") / "mine"


@pytest.mark.parametrize("text", ["", "# nothing set\n", "\n\n"])
def test_empty_yaml_file_is_an_error_naming_the_file(tmp_path, text):
    """BUG before: an empty file silently ran every task with the library defaults."""
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"empty.yaml is empty: set at least one key .* or pass no config file"
    ):
        load_config(path)


def test_a_mapping_with_no_keys_is_the_library_defaults(tmp_path):
    path = tmp_path / "braces.yaml"
    path.write_text("{}\n", encoding="utf-8")
    assert load_config(path) == Config()


def test_override_values_are_parsed_as_yaml(tmp_path):
    path = write_yaml(tmp_path / "run.yaml", {})
    config = load_config(
        path,
        [
            "training.max_grad_norm=null",
            "training.log_with=[tensorboard]",
            "encoder.lora.enabled=true",
            "run_name=a-b",
        ],
    )
    assert config.training.max_grad_norm is None
    assert config.training.log_with == ["tensorboard"]
    assert config.encoder.lora.enabled is True
    assert config.run_name == "a-b"


def test_mixed_precision_no_as_written_in_yaml_and_overrides(tmp_path):
    """``training.mixed_precision=no`` (the documented value) must work unquoted.

    YAML 1.1 (PyYAML) reads a bare ``no`` as ``False``; the config should accept that
    as "no" instead of rejecting the one spelling people type. (BUG: fails today.)
    """
    assert (
        load_config(SMOKE_CONFIG, ["training.mixed_precision='no'"]).training.mixed_precision
        == "no"
    )
    assert (
        load_config(SMOKE_CONFIG, ["training.mixed_precision=no"]).training.mixed_precision == "no"
    )
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  mixed_precision: no\n", encoding="utf-8")
    assert load_config(path).training.mixed_precision == "no"


# ----------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize(
    ("override", "key", "hint"),
    [
        ("training.max_step=10", "training.max_step", "max_steps"),
        ("encoder.nmae=foo", "encoder.nmae", "name"),
        ("tasks.sales.wieght=2", "tasks.sales.wieght", "weight"),
        ("encoder.lora.rr=4", "encoder.lora.rr", "r"),
        ("trainig.max_steps=3", "trainig", "training"),
        ("sampler.temprature=1.5", "sampler.temprature", "temperature"),
    ],
)
def test_unknown_key_names_the_closest_valid_key(override, key, hint):
    message = config_error(SMOKE_CONFIG, [override])
    assert f"unknown key '{key}'" in message
    assert f"did you mean '{hint}'?" in message
    assert str(SMOKE_CONFIG) in message  # the source is named


def test_unknown_key_in_file_is_rejected(tmp_path):
    path = write_yaml(tmp_path / "typo.yaml", {"training": {"learnig_rate": 0.1}})
    message = config_error(path)
    assert str(path) in message
    assert "training.learnig_rate" in message and "learning_rate" in message


def test_unknown_key_without_a_close_match_has_no_hint():
    message = config_error(SMOKE_CONFIG, ["training.zzzzqqq=1"])
    assert "unknown key 'training.zzzzqqq'" in message
    assert "did you mean" not in message


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("training.batch_size=abc", "training.batch_size"),
        ("training.batch_size=0", "training.batch_size"),
        ("encoder.pooling=max", "encoder.pooling"),
        ("tasks.sales.weight=-1", "tasks.sales.weight"),
        ("run_name=a/b", "run_name"),
    ],
)
def test_bad_value_names_the_key(override, key):
    message = config_error(SMOKE_CONFIG, [override])
    assert f"{key}:" in message
    assert override.split("=", 1)[1] in message  # the offending value is shown


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    message = config_error(missing)
    assert str(missing) in message and "does not exist" in message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_non_mapping_yaml_is_named(tmp_path, text):
    path = tmp_path / "list.yaml"
    path.write_text(text, encoding="utf-8")
    message = config_error(path)
    assert str(path) in message and "mapping" in message


def test_invalid_yaml_is_named(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("training: [1, 2\n", encoding="utf-8")
    message = config_error(path)
    assert str(path) in message and "not valid YAML" in message


@pytest.mark.parametrize("override", ["training.max_steps", "=3", "max_steps 3"])
def test_override_without_equals_sign(override):
    message = config_error(SMOKE_CONFIG, [override])
    assert "KEY=VALUE" in message


def test_override_into_a_value_is_rejected():
    message = config_error(SMOKE_CONFIG, ["seed.x=1"])
    assert "'seed' holds a value, not a section" in message


def test_closest_key():
    assert closest_key("max_step", ["max_steps", "batch_size"]) == "max_steps"
    assert closest_key("qqqq", ["max_steps", "batch_size"]) is None


# ----------------------------------------------------------------------------- task names and settings


def test_unknown_task_suggests_the_closest_registered_one():
    registered = toy_plugin_set().tasks
    assert list(select_tasks(["toy_flag"], registered)) == ["toy_flag"]
    with pytest.raises(ConfigError) as caught:
        select_tasks(["toy_valeu"], registered)
    message = str(caught.value)
    assert "unknown task 'toy_valeu'" in message
    assert "did you mean 'toy_value'?" in message
    assert "toy_value, toy_flag" in message  # lists what is registered


def test_task_settings_are_validated_against_the_settings_dataclass():
    assert task_settings(TOY_REGRESSION, {}) == ToySettings()
    assert task_settings(TOY_REGRESSION, {"rows": 30, "noise": 0.5}) == ToySettings(
        rows=30, noise=0.5
    )
    with pytest.raises(ConfigError) as caught:
        task_settings(TOY_REGRESSION, {"rwos": 30})
    message = str(caught.value)
    assert "tasks.toy_value.settings.rwos" in message and "did you mean 'rows'?" in message
    with pytest.raises(ConfigError) as caught:
        task_settings(TOY_REGRESSION, {"zzzzz": 1})
    assert "valid keys: rows, noise" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        task_settings(TOY_REGRESSION, {"rows": "many"})
    assert "tasks.toy_value.settings" in str(caught.value) and "rows" in str(caught.value)


def test_task_without_settings_rejects_settings():
    assert TOY_BINARY.settings is None
    assert task_settings(TOY_BINARY, {}) is None
    with pytest.raises(ConfigError, match="takes no settings"):
        task_settings(TOY_BINARY, {"rows": 3})


def test_settings_dataclass_fields_are_what_the_error_lists():
    assert [f.name for f in dataclasses.fields(ToySettings)] == ["rows", "noise"]


# ----------------------------------------------------------------------------- the command line


def _single_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return result.output


def test_cli_train_with_a_bad_key_exits_1_without_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    result = CliRunner().invoke(
        cli,
        ["train", str(SMOKE_CONFIG), "training.max_step=10", "--output-dir", str(tmp_path / "run")],
    )
    output = _single_error(result)
    assert "unknown key 'training.max_step'" in output and "did you mean 'max_steps'?" in output
    assert not (tmp_path / "run").exists()  # nothing was started


def test_cli_train_only_overrides_and_bad_value(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    result = CliRunner().invoke(
        cli, ["train", "training.batch_size=abc", "--output-dir", str(tmp_path / "run")]
    )
    output = _single_error(result)
    assert "training.batch_size" in output


def test_cli_train_missing_config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "missing.yaml")])
    output = _single_error(result)
    assert "missing.yaml" in output and "does not exist" in output


def test_cli_train_unknown_task_suggests_closest(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    plugins = toy_plugin_set()
    source = PluginSource(load=lambda ctx, config=None: plugins)
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(SMOKE_CONFIG),
            "tasks={}",
            "tasks.toy_valeu.weight=2",
            "--output-dir",
            str(tmp_path / "run"),
        ],
        obj=source,
    )
    output = _single_error(result)
    assert "did you mean 'toy_value'?" in output
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(SMOKE_CONFIG),
            "tasks={}",
            "--task",
            "toy_flg",
            "--output-dir",
            str(tmp_path / "run"),
        ],
        obj=source,
    )
    output = _single_error(result)
    assert "did you mean 'toy_flag'?" in output
