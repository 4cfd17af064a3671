"""Adding a task to a trained model (`shopmtl train --from RUN_DIR`), and dropping one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import toy_config
from shopmtl.core.cli.common import PluginSource
from shopmtl.core.engine.predict import RunError, evaluate_run, load_run, predict_frame
from shopmtl.core.engine.trainer import train


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, toy_plugins):
    """A run that knows only toy_value."""
    folder = tmp_path_factory.mktemp("base")
    train(toy_config(folder, "tasks={toy_value: {}}", "training.max_steps=20", "training.eval_every=10"),
          toy_plugins, progress=False)
    return folder


def test_frozen_encoder_adds_the_new_head_and_keeps_the_old_one_unchanged(base_run, tmp_path, toy_plugins):
    added = tmp_path / "added"
    train(toy_config(added, "tasks={toy_flag: {}}", "training.max_steps=20", "training.eval_every=10",
                     f"init_from={base_run}", "encoder.freeze=true"), toy_plugins, progress=False)
    assert sorted(p.name for p in (added / "model" / "heads").iterdir()) == ["toy_flag.safetensors",
                                                                              "toy_value.safetensors"]
    before, after = load_run(base_run, toy_plugins.tasks), load_run(added, toy_plugins.tasks)
    test_rows = toy_plugins.tasks["toy_value"].build_dataset(_context())["test"]
    old = predict_frame(before, "toy_value", test_rows)["prediction"].to_numpy()
    new = predict_frame(after, "toy_value", test_rows)["prediction"].to_numpy()
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-6)  # the carried head sees the same encoder
    assert evaluate_run(after, "test")["toy_flag"]["auc"] > 0.6  # and the new task learned something
    # The encoder weights are byte-for-byte the source's
    assert (added / "model" / "encoder.safetensors").read_bytes() == (base_run / "model" / "encoder.safetensors").read_bytes()


def test_training_the_encoder_further_does_not_carry_stale_heads(base_run, tmp_path, toy_plugins, capsys):
    moved = tmp_path / "moved"
    train(toy_config(moved, "tasks={toy_flag: {}}", "training.max_steps=10", "training.eval_every=10",
                     f"init_from={base_run}"), toy_plugins, progress=False)
    assert [p.name for p in (moved / "model" / "heads").iterdir()] == ["toy_flag.safetensors"]
    assert "were not carried over" in capsys.readouterr().out


def test_heads_of_a_gated_source_are_not_carried_into_a_hard_sharing_model(tmp_path, toy_plugins, capsys):
    """An MMoE run's heads read its gated experts: a frozen-encoder hard-sharing run cannot host them."""
    gated = tmp_path / "gated"
    train(toy_config(gated, "tasks={toy_value: {}}", "training.max_steps=4", "training.eval_every=4",
                     "sharing.kind=mmoe", "sharing.experts=2"), toy_plugins, progress=False)
    added = tmp_path / "added"
    train(toy_config(added, "tasks={toy_flag: {}}", "training.max_steps=4", "training.eval_every=4",
                     f"init_from={gated}", "encoder.freeze=true"), toy_plugins, progress=False)
    assert [p.name for p in (added / "model" / "heads").iterdir()] == ["toy_flag.safetensors"]
    assert "mmoe gates, so its heads were not carried over" in capsys.readouterr().out


def test_asking_for_some_tasks_opens_only_theirs_and_a_deleted_head_is_refused(
    base_run, tmp_path, toy_plugins
):
    import shutil

    from shopmtl.core.runs.manifest import CorruptRunError, trust_unverified

    run = load_run(base_run, toy_plugins.tasks, tasks=["toy_value"])
    assert list(run.specs) == list(run.features) == ["toy_value"]
    with pytest.raises(RunError, match="has no task 'toy_flag'"):
        load_run(base_run, toy_plugins.tasks, tasks=["toy_flag"])
    copy = tmp_path / "copy"
    shutil.copytree(base_run, copy)
    (copy / "model" / "heads" / "toy_value.safetensors").unlink()
    with pytest.raises(CorruptRunError, match="toy_value.safetensors is missing"):
        load_run(copy, toy_plugins.tasks)  # the manifest fails closed: a deleted head is a change
    with trust_unverified():  # unchecked, the heads on disk are the tasks, as before
        assert "toy_value" not in load_run(copy, toy_plugins.tasks).specs


def test_cli_from_option_is_recorded_in_the_run_config(base_run, tmp_path, toy_plugins, monkeypatch):
    from shopmtl.core import cli as cli_module

    source = PluginSource(load=lambda ctx, config=None: toy_plugins)
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli_module.cli, [
        "train", "examples/configs/smoke.yaml", "tasks={toy_flag: {}}", "training.max_steps=6",
        "training.eval_every=6", "encoder.freeze=true", "--from", str(base_run), "--output-dir", str(out)], obj=source)
    assert result.exit_code == 0, result.output
    assert "carried over unchanged heads" in result.output
    import yaml

    assert yaml.safe_load((out / "config.yaml").read_text())["init_from"] == str(base_run)
    assert json.loads((out / "metrics.json").read_text())["tasks"].keys() == {"toy_flag"}


def _context():
    from shopmtl import BuildContext

    return BuildContext(settings=None)
