"""The trainer on the toy tasks: missing labels, resume, determinism, a refused output folder, hooks.

The session's toy run (conftest toy_run) is the reference: 30 steps of the toy
tasks on the smoke config's tiny random encoder, a checkpoint every 10 steps.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SMOKE_CONFIG, toy_config, toy_plugin_set
from shopmtl import BuildContext, TaskData, hookimpl
from shopmtl.core.cli import cli
from shopmtl.core.cli.common import PluginSource
from shopmtl.core.data.prepare import TaskDataError
from shopmtl.core.engine.trainer import train
from shopmtl.core.mtl.sampler import TaskSampler
from shopmtl.core.runs import checkpoint
from shopmtl.core.runs.rundir import RunDirectoryError
from shopmtl.core.runs.transaction import open_run, work_dir
from toy_tasks import TOY_BINARY, TOY_REGRESSION, build


def _sparse_plugin():
    """Toy tasks whose labels are partly (or, in train, entirely) missing."""

    def sparse(fraction: float, columns: tuple[str, ...], splits=("train", "val", "test")):
        def build_sparse(ctx: BuildContext) -> TaskData:
            data = build(ctx)
            out = {}
            for split, frame in data.splits.items():
                frame = frame.copy()
                if split in splits:
                    rng = np.random.default_rng(len(split))
                    for column in columns:
                        frame.loc[rng.random(len(frame)) < fraction, column] = np.nan
                out[split] = frame
            return TaskData(out)

        return build_sparse

    module = types.ModuleType("sparse_tasks")

    @hookimpl
    def register_tasks(register):
        register(
            dataclasses.replace(
                TOY_REGRESSION, name="sparse_value", build_dataset=sparse(0.4, ("value",))
            )
        )
        register(
            dataclasses.replace(
                TOY_BINARY, name="sparse_flag", build_dataset=sparse(0.4, ("flag",))
            )
        )
        # Every train label missing: each of its batches has a zero loss (val/test are labelled).
        register(
            dataclasses.replace(
                TOY_REGRESSION,
                name="unlabelled_value",
                build_dataset=sparse(1.0, ("value",), splits=("train",)),
            )
        )

    module.register_tasks = register_tasks
    return module


def test_training_with_missing_labels(tmp_path):
    plugins = toy_plugin_set(("sparse", _sparse_plugin()))
    config = toy_config(
        tmp_path / "run",
        "training.max_steps=20",
        "tasks.sparse_value={}",
        "tasks.sparse_flag={}",
    )
    result = train(config, plugins, progress=False)
    assert set(result.metrics) == {"sparse_value", "sparse_flag"}
    for task, splits in result.metrics.items():
        for split in ("val", "test"):
            for name, value in splits[split].items():
                assert value is not None and math.isfinite(value), (task, split, name, value)
    assert result.metrics["sparse_flag"]["test"]["auc"] > 0.5
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["tasks"] == result.metrics


def test_a_task_without_any_train_label_is_refused_before_training(tmp_path):
    plugins = toy_plugin_set(("sparse", _sparse_plugin()))
    config = toy_config(tmp_path / "run", "training.max_steps=2", "tasks.unlabelled_value={}")
    with pytest.raises(TaskDataError, match="missing \\(NaN\\) on every row"):
        train(config, plugins, progress=False)
    assert not (tmp_path / "run" / "metrics.json").exists()


# ----------------------------------------------------------------------------- resume, determinism, refusal


def interrupt_at_draw_15(config, plugins, monkeypatch) -> None:
    """Train ``config`` until the sampler's 16th draw, mid-way between the checkpoints at steps 10 and 20,
    and stop it there as Ctrl-C would."""
    real_next = TaskSampler.next

    def next_until_interrupted(self):
        if self.draws >= 15:
            raise KeyboardInterrupt
        return real_next(self)

    monkeypatch.setattr(TaskSampler, "next", next_until_interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, plugins, progress=False)
    monkeypatch.setattr(TaskSampler, "next", real_next)


def test_resume_after_interrupt_gives_the_uninterrupted_result(
    toy_run, toy_plugins, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    config = toy_config(out)
    interrupt_at_draw_15(config, toy_plugins, monkeypatch)

    # The interrupted run lives in its working folder; the run directory is not there until it completes.
    state = checkpoint.read_json(work_dir(out) / checkpoint.LAST_CHECKPOINT / "trainer_state.json")
    assert state["step"] == 10 and state["sampler"]["draws"] == 10
    assert not out.exists()
    with pytest.raises(RunDirectoryError, match="interrupted run.*--resume"):
        train(config, toy_plugins, progress=False)  # neither --resume nor --overwrite

    result = train(config, toy_plugins, resume=True, progress=False)
    assert result.steps == 30 and result.output_dir == out and not work_dir(out).exists()
    assert result.metrics == toy_run.result.metrics  # exactly, not approximately
    assert result.history == toy_run.result.history
    assert result.best_step == toy_run.result.best_step


def test_frozen_layer_cache_resumes_to_the_uninterrupted_result(
    toy_plugins, tmp_path, monkeypatch, capsys
):
    """The cached frozen-layer outputs are not saved: a resumed run refills the cache and must
    still reproduce the uninterrupted run (the cache holds eval-mode outputs, so whether a text
    was cached before the interrupt changes nothing)."""
    whole = train(
        toy_config(tmp_path / "whole", "encoder.freeze_layers=1"), toy_plugins, progress=False
    )
    assert (
        "lowest 1 layer(s) frozen: their output for each text is computed once"
        in capsys.readouterr().out
    )
    out = tmp_path / "run"
    config = toy_config(out, "encoder.freeze_layers=1")
    interrupt_at_draw_15(config, toy_plugins, monkeypatch)
    resumed = train(config, toy_plugins, resume=True, progress=False)
    assert resumed.metrics == whole.metrics and resumed.history == whole.history


def test_same_seed_gives_the_same_metrics(toy_run, toy_plugins, tmp_path):
    result = train(toy_config(tmp_path / "again"), toy_plugins, progress=False)
    assert result.metrics == toy_run.result.metrics
    assert result.history == toy_run.result.history


def test_occupied_output_dir_is_refused(toy_run, toy_plugins, tmp_path, monkeypatch):
    out = toy_run.output_dir
    before = (out / "metrics.json").read_bytes()
    with pytest.raises(RunDirectoryError) as caught:
        train(toy_config(out), toy_plugins, progress=False)
    message = str(caught.value)
    assert str(out) in message and "already holds a run" in message
    assert "--resume" in message and "--overwrite" in message
    assert (out / "metrics.json").read_bytes() == before  # untouched

    other = tmp_path / "not-a-run"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="no checkpoint to resume from"):
        open_run(other, resume=True, overwrite=False)
    assert open_run(other, resume=False, overwrite=True) == (
        work_dir(other),
        False,
    )  # --overwrite lets it through
    assert (
        other / "notes.txt"
    ).read_text() == "mine"  # ... and replaces it only when the new run is complete
    assert (
        open_run(tmp_path / "fresh", resume=False, overwrite=False)[1] is False
    )  # a new folder is fine

    # The same refusal through the command line: one line, exit 1, no traceback.
    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    source = PluginSource(load=lambda ctx, config=None: toy_plugins)
    result = CliRunner().invoke(
        cli, ["train", str(SMOKE_CONFIG), "tasks={}", "--output-dir", str(out)], obj=source
    )
    assert result.exit_code == 1, result.output
    assert "Error:" in result.output and "already holds a run" in result.output
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------- hooks


def test_hooks_are_called(toy_run):
    recorder, out, result = toy_run.recorder, toy_run.output_dir, toy_run.result
    assert recorder.calls[0][0] == "on_run_start"
    (start,) = recorder.named("on_run_start")
    run = start["run"]
    assert run.output_dir == out and run.tasks == ("toy_value", "toy_flag") and run.is_main_process
    assert run.config["training"]["max_steps"] == 30

    evaluations = recorder.named("on_evaluation")
    assert [(e["split"], e["step"]) for e in evaluations] == [
        ("val", 10),
        ("val", 20),
        ("val", 30),
        ("test", result.best_step),
    ]
    assert [e["metrics"] for e in evaluations[:3]] == [h["val"] for h in result.history]
    assert evaluations[-1]["metrics"] == {t: s["test"] for t, s in result.metrics.items()}

    saved = recorder.named("on_checkpoint_saved")
    assert [s["step"] for s in saved] == [10, 20, 30]
    for call in saved:
        assert (
            call["path"] == work_dir(out) / checkpoint.LAST_CHECKPOINT
        )  # the run is swapped in when complete
        assert call["complete"] and call["saved_step"] == call["step"]  # written before the call


def test_a_failing_hook_does_not_stop_the_run(toy_plugins):
    from shopmtl.registry.manager import PluginWarning

    class Broken:
        @hookimpl
        def on_run_start(self, run):
            raise RuntimeError("boom")

    plugins = toy_plugin_set(("broken", Broken()))
    with pytest.warns(PluginWarning, match="broken"):
        plugins.notify("on_run_start", run=None)


def test_the_collective_timeout_reaches_the_process_group_settings(tmp_path):
    """A multi-process run's processes wait this long for the main process's prior fits (set-up)."""
    from datetime import timedelta

    from shopmtl.core.engine.hardware import PrecisionChoice
    from shopmtl.core.engine.trainer import make_accelerator

    config = toy_config(tmp_path / "run", "training.collective_timeout_s=5400")
    accelerator = make_accelerator(config, tmp_path / "work", PrecisionChoice("no", "no", "test"))
    assert accelerator.init_handler.to_kwargs()["timeout"] == timedelta(seconds=5400)
