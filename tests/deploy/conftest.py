"""One toy run for the deploy tests, trained once per session in a few seconds.

Float32 (exported graphs are float32, so the engines can be compared within 1e-3), a
shared LoRA adapter (merged on export) and MMoE sharing (exported with the heads), on
the toy tasks of ``tests/toy_tasks.py`` (``toy_plugins``, from the root conftest).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SMOKE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "configs" / "smoke.yaml"
DEPLOY_OVERRIDES = (
    "tasks={}",
    "training.max_steps=20",
    "training.eval_every=10",
    "training.early_stopping_patience=null",
    "training.mixed_precision=no",
    "encoder.lora.enabled=true",
    "encoder.lora.r=4",
    "sharing.kind=mmoe",
    "sharing.experts=2",
)


def deploy_config(output_dir: Path, *overrides: str):
    """The deploy toy run's config (plus ``overrides``), writing to ``output_dir``."""
    from shopmtl.core.config import load_config

    return load_config(SMOKE_CONFIG, [*DEPLOY_OVERRIDES, f"output_dir={output_dir}", *overrides])


@pytest.fixture(scope="session")
def deploy_run_dir(tmp_path_factory, toy_plugins) -> Path:
    """The trained toy run's directory."""
    from shopmtl.core.engine import trainer

    output = tmp_path_factory.mktemp("deploy") / "run"
    trainer.train(deploy_config(output), toy_plugins, progress=False)
    return output


@pytest.fixture(scope="session")
def deploy_run(deploy_run_dir, toy_plugins):
    """The run, loaded once."""
    from shopmtl.core.engine.predict import load_run

    return load_run(deploy_run_dir, toy_plugins.tasks)


@pytest.fixture(scope="session")
def deploy_config_of():
    """:func:`deploy_config`, for tests that train a variant of the deploy run."""
    return deploy_config


@pytest.fixture
def shopmtl(toy_plugins, monkeypatch):
    """Invoke ``shopmtl ARGS...`` in-process with the toy plugins; the click Result."""
    from click.testing import CliRunner
    from shopmtl.core.cli import cli
    from shopmtl.core.cli.common import PluginSource

    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    source = PluginSource(
        load=lambda ctx, config=None: toy_plugins
    )  # the command's plugins, through click's context
    return lambda *args: CliRunner().invoke(cli, [str(a) for a in args], obj=source)


@pytest.fixture(scope="session")
def exported(deploy_run_dir, toy_plugins, tmp_path_factory):
    """``exported(kind)``: the deploy run exported with ``shopmtl export --format KIND`` (once per kind)."""
    from click.testing import CliRunner
    from shopmtl.core import cli as cli_module
    from shopmtl.core.cli.common import PluginSource

    done: dict[str, Path] = {}

    def export(kind: str) -> Path:
        if kind not in done:
            target = tmp_path_factory.mktemp(kind) / "export"
            result = CliRunner().invoke(
                cli_module.cli,
                ["export", str(deploy_run_dir), "--format", kind, "--output", str(target)],
                obj=PluginSource(load=lambda ctx, config=None: toy_plugins),
            )
            assert result.exit_code == 0, result.output
            done[kind] = target
        return done[kind]

    return export
