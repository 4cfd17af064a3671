"""Shared fixtures: the toy plugin (tests/toy_tasks.py) and one toy run trained per session.

``tests/`` goes on ``sys.path`` so test modules can ``import toy_tasks``.

The toy run trains ``toy_value`` (regression) and ``toy_flag`` (binary, text pair) with
the smoke config's tiny random encoder for 30 steps, validating every 10, in a few
seconds. It records every observer-hook call and snapshots the model each time the
trainer saves the best model, so tests can check hooks, the run directory, the
safetensors round trip, resuming and determinism against it without training again.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SMOKE_CONFIG = REPO / "examples" / "configs" / "smoke.yaml"

if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import toy_tasks  # noqa: E402

# The cleaned-table cache (plugins/shared/warehouse.py) of this session: fresh, private, and
# gone afterwards; subprocesses the tests start inherit it through the environment.
if "SHOPMTL_CACHE_DIR" not in os.environ:
    _CACHE = tempfile.mkdtemp(prefix="shopmtl-test-cache-")
    os.environ["SHOPMTL_CACHE_DIR"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, True)

# The built-in tasks' reference data and datasets: built once, shared by tests/plugins/.
pytest_plugins = ["builtin_reference"]

from shopmtl import hookimpl  # noqa: E402


@pytest.fixture
def clean_plugin_env(monkeypatch):
    """No SHOPMTL_PLUGINS / SHOPMTL_STRICT_PLUGINS from the caller's environment."""
    monkeypatch.delenv("SHOPMTL_PLUGINS", raising=False)
    monkeypatch.delenv("SHOPMTL_STRICT_PLUGINS", raising=False)


#: Overrides turning the smoke config into the toy run: the toy tasks only, 30 steps,
#: a validation (and checkpoint) every 10 steps, no early stop.
TOY_OVERRIDES = (
    "tasks={}",
    "training.max_steps=30",
    "training.eval_every=10",
    "training.early_stopping_patience=null",
)


def toy_config(output_dir: Path | str, *overrides: str):
    """The toy run's config, written to ``output_dir``, plus any extra overrides."""
    from shopmtl.core.config import load_config

    return load_config(SMOKE_CONFIG, [*TOY_OVERRIDES, f"output_dir={output_dir}", *overrides])


def toy_plugin_set(*extra: tuple[str, object]):
    """A PluginSet with the toy plugin (plus ``extra`` plugins) and no installed entry points."""
    from shopmtl.core.mtl.builtin import load_plugins

    return load_plugins([("toy", toy_tasks), *extra], only=[])


class HookRecorder:
    """An observer plugin that records every call of the run hooks."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def on_run_start(self, run):
        self.calls.append(("on_run_start", {"run": run}))

    @hookimpl
    def on_evaluation(self, run, step, split, metrics):
        self.calls.append(
            ("on_evaluation", {"run": run, "step": step, "split": split, "metrics": metrics})
        )

    @hookimpl
    def on_checkpoint_saved(self, run, path, step):
        state = Path(path) / "trainer_state.json"
        saved_step = None
        if state.is_file():
            import json

            saved_step = json.loads(state.read_text())["step"]
        self.calls.append(
            (
                "on_checkpoint_saved",
                {
                    "run": run,
                    "path": Path(path),
                    "step": step,
                    "complete": state.is_file(),
                    "saved_step": saved_step,
                },
            )
        )

    def named(self, hook: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == hook]


@dataclass
class ToyRun:
    """The session's toy run and what was observed while it trained."""

    output_dir: Path
    result: Any  # TrainResult
    plugins: Any  # PluginSet (toy + recorder)
    recorder: HookRecorder
    model: Any  # the in-memory MultiTaskModel the trainer built
    best_snapshots: list[dict[str, Any]] = field(
        default_factory=list
    )  # state dicts at each best-model save


@pytest.fixture(scope="session")
def toy_plugins():
    """The toy plugin alone: tasks ``toy_value`` and ``toy_flag``."""
    return toy_plugin_set()


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory) -> ToyRun:
    """Train the toy tasks once per session (about 3-10 s) and keep what the tests need."""
    from shopmtl.core.engine import trainer
    from shopmtl.core.runs import assemble, checkpoint

    recorder = HookRecorder()
    plugins = toy_plugin_set(("recorder", recorder))
    output_dir = tmp_path_factory.mktemp("toy") / "run"
    built: list[Any] = []
    snapshots: list[dict[str, Any]] = []
    real_build_model, real_save_model_dir = assemble.build_model, checkpoint.save_model_dir

    def build_model(*args, **kwargs):
        model = real_build_model(*args, **kwargs)
        built.append(model)
        return model

    def save_model_dir(target, model, *args, **kwargs):
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real_save_model_dir(target, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assemble, "build_model", build_model)
        patch.setattr(checkpoint, "save_model_dir", save_model_dir)
        result = trainer.train(toy_config(output_dir), plugins, progress=False)
    assert len(built) == 1
    return ToyRun(output_dir, result, plugins, recorder, built[0], snapshots)
