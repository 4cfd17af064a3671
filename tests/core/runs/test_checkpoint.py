"""The run directory of the toy run: safetensors only, the umask, and the round trip to the same model."""

from __future__ import annotations

import shopmtl

import dataclasses
import json
import math
import types

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import SMOKE_CONFIG, toy_config, toy_plugin_set
from safetensors import safe_open
from toy_tasks import TOY_BINARY, TOY_REGRESSION, build
from torch.nn import functional as F

from shopmtl.core.cli.common import PluginSource
from shopmtl import BuildContext, TaskData, hookimpl
from shopmtl.core.runs import checkpoint
from shopmtl.core.model.batching import bucket_split, make_batch, text_buckets
from shopmtl.core.cli import cli
from shopmtl.core.config import ConfigError, SamplerConfig, load_config
from shopmtl.core.model.encoder import build_encoder, load_tokenizer
from shopmtl.core.data.features import FeatureState, encode_rows
from shopmtl.core.engine.evaluate import Scorer
from shopmtl.core.engine.predict import RunError, evaluate_run, load_run, predict_frame
from shopmtl.core.mtl.sampler import TaskSampler, task_probabilities
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.engine.trainer import train
from shopmtl.core.model.losses import DEFAULT_LOSSES, masked_bce, masked_cross_entropy, masked_mse


# ----------------------------------------------------------------------------- the run directory


PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz"}


def _looks_pickled(path) -> bool:
    head = path.read_bytes()[:4]
    return (len(head) >= 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5)) or head.startswith(b"PK\x03\x04")


def test_run_directory_holds_safetensors_and_no_pickle(toy_run):
    out = toy_run.output_dir
    tasks = {"toy_value", "toy_flag"}
    for folder in (out / checkpoint.MODEL_DIR, out / checkpoint.LAST_CHECKPOINT):
        assert (folder / "encoder.safetensors").is_file()
        heads = list((folder / "heads").iterdir())
        assert {p.name for p in heads} == {f"{t}.safetensors" for t in tasks}  # one file per head
        assert (folder / "features.json").is_file() and (folder / "backbone" / "config.json").is_file()
    last = out / checkpoint.LAST_CHECKPOINT
    assert (last / "optimizer.safetensors").is_file() and (last / "trainer_state.json").is_file()
    for name in ("config.yaml", "plugins.json", "metrics.json"):
        assert (out / name).is_file()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in PICKLE_SUFFIXES]
    assert not [p for p in files if _looks_pickled(p)]
    assert not [p for p in out.rglob(".*")]  # no staging leftovers
    for path in (p for p in files if p.suffix == ".safetensors"):
        with safe_open(str(path), framework="pt") as handle:
            assert list(handle.keys())
    with safe_open(str(out / "model" / "heads" / "toy_flag.safetensors"), framework="pt") as handle:
        assert all(not key.startswith("encoder") for key in handle.keys())  # a head file holds the head only
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tasks"] == toy_run.result.metrics
    assert metrics["steps"] == 30 and metrics["best_step"] == toy_run.result.best_step
    assert [h["step"] for h in metrics["history"]] == [10, 20, 30]
    record = json.loads((out / "plugins.json").read_text())
    assert record["tasks"] == {"toy_value": "toy", "toy_flag": "toy"}
    # the toy plugin is registered as a built-in: it carries shopmtl's own version
    assert {p["name"]: p["version"] for p in record["plugins"]}["toy"] == shopmtl.__version__


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_run_files_respect_the_umask(toy_run):
    """A run directory is as readable as anything else the user writes (umask), so a
    shared ``runs/`` folder or a serving process under another account can load it.
    BUG today: the atomic writers keep mkstemp/mkdtemp's private modes (files 0600,
    ``model/`` and ``checkpoints/last`` 0700), and safetensors writes 0600 files."""
    mask = _umask()
    wrong = []
    for path in [toy_run.output_dir, *toy_run.output_dir.rglob("*")]:
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        if path.stat().st_mode & 0o777 != expected:
            wrong.append(f"{path.relative_to(toy_run.output_dir)}: {oct(path.stat().st_mode & 0o777)}")
    assert not wrong, f"umask {oct(mask)}, expected {oct(0o666 & ~mask)} / {oct(0o777 & ~mask)}: " + ", ".join(wrong)


def test_safetensors_round_trip_rebuilds_the_trained_model(toy_run):
    run = load_run(toy_run.output_dir, toy_run.plugins.tasks)
    assert set(run.specs) == {"toy_value", "toy_flag"}
    # Every weight equals the best model as it was in memory when it was saved.
    best = {k: v for k, v in toy_run.best_snapshots[-1].items() if k.startswith(("encoder.", "heads."))}
    loaded = run.model.state_dict()
    assert {k for k in loaded if k.startswith(("encoder.", "heads."))} == best.keys()
    for key, value in best.items():
        assert torch.equal(loaded[key].cpu(), value.cpu()), key
    # The rebuilt model predicts the test split exactly as the trained model does.
    test = build(BuildContext(settings=None))["test"]
    trained = dataclasses.replace(run, model=toy_run.model)
    for task in run.specs:
        mine = predict_frame(run, task, test)
        theirs = predict_frame(trained, task, test)
        pd.testing.assert_frame_equal(mine, theirs)
        assert len(mine) == len(test)
    # ...and re-evaluating the run reproduces the trainer's test metrics.
    assert evaluate_run(run, "test") == {t: s["test"] for t, s in toy_run.result.metrics.items()}


def test_lora_run_round_trips(toy_plugins, tmp_path):
    """LoRA adapters are saved inside encoder.safetensors and rebuilt by load_run."""
    out = tmp_path / "lora"
    result = train(toy_config(out, "training.max_steps=4", "training.eval_every=4", "encoder.lora.enabled=true"),
                   toy_plugins, progress=False)
    with safe_open(str(out / "model" / "encoder.safetensors"), framework="pt") as handle:
        assert any("lora_A" in key for key in handle.keys())
    run = load_run(out, toy_plugins.tasks)
    assert any("lora_B" in key for key in run.model.state_dict())
    assert evaluate_run(run, "test") == {t: s["test"] for t, s in result.metrics.items()}


def test_per_task_lora_adapters_train_separately_and_round_trip(toy_plugins, tmp_path):
    """encoder.lora.per_task: one adapter per task, each trained only on its task's batches."""
    out = tmp_path / "lora_per_task"
    config = toy_config(out, "training.max_steps=6", "training.eval_every=6", "encoder.lora.enabled=true",
                        "encoder.lora.per_task=true", "encoder.lora.dropout=0")
    result = train(config, toy_plugins, progress=False)
    assert sorted(checkpoint.saved_adapters(out / "model")) == ["toy_flag", "toy_value"]
    run = load_run(out, toy_plugins.tasks)
    encoder = run.model.encoder
    assert set(encoder.adapters) == {"toy_flag", "toy_value"}
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any(".toy_flag." in n for n in trainable) and any(".toy_value." in n for n in trainable)
    # lora_B starts at zero: both adapters moved, and they differ from each other.
    weights = {n: p for n, p in encoder.named_parameters() if "lora_B" in n}
    by_task = {t: torch.cat([p.flatten() for n, p in sorted(weights.items()) if f".{t}." in n])
               for t in ("toy_flag", "toy_value")}
    assert all(v.abs().sum() > 0 for v in by_task.values())
    assert not torch.allclose(by_task["toy_flag"], by_task["toy_value"])
    # The same text is encoded differently for each task, and evaluation reproduces training's.
    ids, mask = run.bank.pad(run.bank.ids_for(["red mug"]))
    with torch.no_grad(), run.accelerator.autocast():  # as evaluation computes them
        encoder.use_adapter("toy_flag")
        flag = encoder(ids, mask).float()
        encoder.use_adapter("toy_value")
        value = encoder(ids, mask).float()
    assert (flag - value).abs().max() > 1e-3
    scorer = Scorer(run.accelerator, run.model, run.bank, 8)  # evaluation picks each task's adapter
    text_id = int(run.bank.ids_for(["red mug"])[0])
    torch.testing.assert_close(scorer._embed([text_id], "toy_flag")[text_id], flag[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(scorer._embed([text_id], "toy_value")[text_id], value[0], atol=1e-5, rtol=1e-5)
    assert evaluate_run(run, "test") == {t: s["test"] for t, s in result.metrics.items()}
    # train --from cannot start from per-task adapters: there is no single encoder.
    with pytest.raises(ConfigError, match="one LoRA adapter per task"):
        train(toy_config(tmp_path / "next", f"init_from={out}"), toy_plugins, progress=False)


def test_compiled_encoder_trains_and_saves_plain_names(toy_plugins, tmp_path, capsys):
    """training.compile: the encoder runs through torch.compile (aot_eager here: no C++
    toolchain needed in the test) and the checkpoint keeps the eager parameter names."""
    out = tmp_path / "compiled"
    result = train(toy_config(out, "training.max_steps=3", "training.eval_every=3", "training.compile=aot_eager"),
                   toy_plugins, progress=False)
    assert "encoder compiled with torch.compile (backend aot_eager)" in capsys.readouterr().out
    with safe_open(str(out / "model" / "encoder.safetensors"), framework="pt") as handle:
        keys = list(handle.keys())
    assert keys and not any("_orig_mod" in k for k in keys)
    run = load_run(out, toy_plugins.tasks)  # an eager model loads the compiled run's weights
    assert evaluate_run(run, "test") == {t: s["test"] for t, s in result.metrics.items()}
