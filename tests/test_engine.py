"""The training engine on the toy tasks (tests/toy_tasks.py): losses, run directory,
safetensors round trip, resume, determinism, hooks, the task sampler and batching.

The session's toy run (conftest ``toy_run``) is the reference: 30 steps of the toy
tasks on the smoke config's tiny random encoder, a checkpoint every 10 steps.
"""

from __future__ import annotations

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
from shopmtl.core.runs.rundir import RunDirectoryError, check_output_dir
from shopmtl.registry.blocks import DEFAULT_LOSSES, masked_bce, masked_cross_entropy, masked_mse

NAN = float("nan")


# ----------------------------------------------------------------------------- masked losses


def _present_only(loss_fn, outputs, labels):
    """The same loss computed by hand on the rows whose label is present."""
    keep = ~torch.isnan(labels)
    return loss_fn(outputs.reshape(labels.shape)[keep], labels[keep])


def test_masked_mse_ignores_missing_labels():
    torch.manual_seed(0)
    outputs = torch.randn(6, 1, requires_grad=True)
    labels = torch.tensor([[1.0], [NAN], [2.0], [NAN], [0.5], [3.0]])
    loss = masked_mse(outputs, labels)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, _present_only(F.mse_loss, outputs, labels))
    loss.backward()
    assert torch.all(outputs.grad[[1, 3]] == 0) and torch.all(outputs.grad[[0, 2, 4, 5]] != 0)


def test_masked_bce_ignores_missing_labels_per_entry():
    torch.manual_seed(0)
    outputs = torch.randn(4, 3, requires_grad=True)  # multilabel: NaN per entry
    labels = torch.tensor([[1.0, NAN, 0.0], [NAN, NAN, 1.0], [0.0, 1.0, NAN], [1.0, 1.0, 0.0]])
    loss = masked_bce(outputs, labels)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, _present_only(F.binary_cross_entropy_with_logits, outputs, labels))
    loss.backward()
    assert torch.all(outputs.grad[torch.isnan(labels)] == 0)
    binary = torch.randn(5, 1)
    flags = torch.tensor([[1.0], [NAN], [0.0], [NAN], [1.0]])
    torch.testing.assert_close(masked_bce(binary, flags),
                               _present_only(F.binary_cross_entropy_with_logits, binary, flags))


def test_masked_cross_entropy_ignores_missing_labels():
    torch.manual_seed(0)
    outputs = torch.randn(5, 4, requires_grad=True)
    labels = torch.tensor([[2.0], [NAN], [0.0], [3.0], [NAN]])
    loss = masked_cross_entropy(outputs, labels)
    keep = torch.tensor([0, 2, 3])
    torch.testing.assert_close(loss, F.cross_entropy(outputs[keep], torch.tensor([2, 0, 3])))
    loss.backward()
    assert torch.all(outputs.grad[[1, 4]] == 0)


@pytest.mark.parametrize(
    ("loss_fn", "shape", "label_shape"),
    [(masked_mse, (4, 1), (4, 1)), (masked_bce, (4, 3), (4, 3)), (masked_cross_entropy, (4, 5), (4, 1))],
)
def test_all_missing_gives_zero_with_a_gradient_path(loss_fn, shape, label_shape):
    outputs = torch.randn(*shape, requires_grad=True)
    loss = loss_fn(outputs, torch.full(label_shape, NAN))
    assert loss.item() == 0.0
    assert loss.requires_grad  # still connected to the graph (DDP needs every parameter used)
    loss.backward()
    assert outputs.grad is not None and torch.all(outputs.grad == 0)


def test_default_losses_cover_every_kind():
    assert DEFAULT_LOSSES == {"regression": masked_mse, "binary": masked_bce,
                              "multilabel": masked_bce, "multiclass": masked_cross_entropy}


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
        register(dataclasses.replace(TOY_REGRESSION, name="sparse_value", build_dataset=sparse(0.4, ("value",))))
        register(dataclasses.replace(TOY_BINARY, name="sparse_flag", build_dataset=sparse(0.4, ("flag",))))
        # Every train label missing: each of its batches has a zero loss (val/test are labelled).
        register(dataclasses.replace(TOY_REGRESSION, name="unlabelled_value",
                                     build_dataset=sparse(1.0, ("value",), splits=("train",))))

    module.register_tasks = register_tasks
    return module


def test_training_with_missing_labels(tmp_path):
    plugins = toy_plugin_set(("sparse", _sparse_plugin()))
    config = toy_config(tmp_path / "run", "training.max_steps=20",
                        "tasks.sparse_value={}", "tasks.sparse_flag={}", "tasks.unlabelled_value={}")
    result = train(config, plugins, progress=False)
    assert set(result.metrics) == {"sparse_value", "sparse_flag", "unlabelled_value"}
    for task, splits in result.metrics.items():
        for split in ("val", "test"):
            for name, value in splits[split].items():
                assert value is not None and math.isfinite(value), (task, split, name, value)
    assert result.metrics["sparse_flag"]["test"]["auc"] > 0.5
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["tasks"] == result.metrics


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
    assert {p["name"]: p["version"] for p in record["plugins"]}["toy"] == "0.1.0"


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


def test_load_run_errors_are_clear(toy_run, tmp_path):
    with pytest.raises(RunError, match="not a finished shopmtl run"):
        load_run(tmp_path, toy_run.plugins.tasks)
    with pytest.raises(RunError, match=r"toy_value \(plugin toy\).*install those plugins"):
        load_run(toy_run.output_dir, {"toy_flag": TOY_BINARY})
    run = load_run(toy_run.output_dir, toy_run.plugins.tasks)
    with pytest.raises(RunError, match="has no task 'sales'"):
        run.task("sales")


def test_load_run_with_another_precision_in_the_same_process(toy_run, tmp_path):
    """Loading a run trained with ``mixed_precision: no`` after a bf16 run in the same
    Python process (a notebook comparing two runs). BUG today: accelerate's process-wide
    AcceleratorState refuses a second precision ("AcceleratorState has already been
    initialized and cannot be changed")."""
    import shutil

    import yaml

    copy = tmp_path / "fp32-run"
    shutil.copytree(toy_run.output_dir / "model", copy / "model")
    shutil.copy(toy_run.output_dir / "plugins.json", copy / "plugins.json")
    config = yaml.safe_load((toy_run.output_dir / "config.yaml").read_text())
    assert config["training"]["mixed_precision"] == "bf16"  # the session's runs are bf16
    config["training"]["mixed_precision"] = "no"
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    run = load_run(copy, toy_run.plugins.tasks)
    test = build(BuildContext(settings=None))["test"]
    assert len(predict_frame(run, "toy_value", test)) == len(test)


# ----------------------------------------------------------------------------- resume, determinism, refusal


def test_resume_after_interrupt_gives_the_uninterrupted_result(toy_run, toy_plugins, tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = toy_config(out)
    real_next = TaskSampler.next

    def next_until_interrupted(self):
        if self.draws >= 15:  # mid-way between the checkpoints at steps 10 and 20
            raise KeyboardInterrupt
        return real_next(self)

    monkeypatch.setattr(TaskSampler, "next", next_until_interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, toy_plugins, progress=False)
    monkeypatch.setattr(TaskSampler, "next", real_next)

    state = checkpoint.read_json(out / checkpoint.LAST_CHECKPOINT / "trainer_state.json")
    assert state["step"] == 10 and state["sampler"]["draws"] == 10
    assert not (out / "metrics.json").exists()
    with pytest.raises(RunDirectoryError, match="--resume"):
        train(config, toy_plugins, progress=False)  # neither --resume nor --overwrite

    result = train(config, toy_plugins, resume=True, progress=False)
    assert result.steps == 30
    assert result.metrics == toy_run.result.metrics  # exactly, not approximately
    assert result.history == toy_run.result.history
    assert result.best_step == toy_run.result.best_step


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
        check_output_dir(other, resume=True, overwrite=False)
    check_output_dir(other, resume=False, overwrite=True)  # --overwrite lets it through
    check_output_dir(tmp_path / "fresh", resume=False, overwrite=False)  # a new folder is fine

    # The same refusal through the command line: one line, exit 1, no traceback.
    monkeypatch.delenv("SHOPMTL_DEBUG", raising=False)
    source = PluginSource(load=lambda ctx, config=None: toy_plugins)
    result = CliRunner().invoke(cli, ["train", str(SMOKE_CONFIG), "tasks={}", "--output-dir", str(out)], obj=source)
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
    assert [(e["split"], e["step"]) for e in evaluations] == [("val", 10), ("val", 20), ("val", 30),
                                                              ("test", result.best_step)]
    assert [e["metrics"] for e in evaluations[:3]] == [h["val"] for h in result.history]
    assert evaluations[-1]["metrics"] == {t: s["test"] for t, s in result.metrics.items()}

    saved = recorder.named("on_checkpoint_saved")
    assert [s["step"] for s in saved] == [10, 20, 30]
    for call in saved:
        assert call["path"] == out / checkpoint.LAST_CHECKPOINT
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


# ----------------------------------------------------------------------------- sampler


SIZES = {"small": 100, "big": 400}


def make_sampler(sizes, config, batch_size, seed, process_index=0, num_processes=1) -> TaskSampler:
    """A sampler as the trainer builds it: probabilities from the config's (built-in) sampler."""
    return TaskSampler(sizes, task_probabilities(sizes, config), batch_size, seed, process_index, num_processes)


def test_task_probabilities():
    proportional = task_probabilities(SIZES, SamplerConfig(kind="proportional"))
    assert proportional == pytest.approx({"small": 0.2, "big": 0.8})
    temperature = task_probabilities(SIZES, SamplerConfig(kind="temperature", temperature=2.0))
    assert temperature == pytest.approx({"small": 1 / 3, "big": 2 / 3})  # sqrt(100) : sqrt(400)
    assert task_probabilities(SIZES, SamplerConfig(kind="temperature", temperature=1.0)) == pytest.approx(proportional)
    assert task_probabilities(SIZES, SamplerConfig(kind="uniform")) == pytest.approx({"small": 0.5, "big": 0.5})
    high = task_probabilities(SIZES, SamplerConfig(kind="temperature", temperature=100.0))
    assert 0.49 < high["small"] < 0.5  # a high temperature approaches uniform
    assert task_probabilities({"empty": 0, "one": 1}, SamplerConfig(kind="proportional")) == pytest.approx(
        {"empty": 0.5, "one": 0.5})  # an empty task is counted as one row, never divides by zero


def test_sampler_draws_follow_the_probabilities():
    sampler = make_sampler(SIZES, SamplerConfig(kind="temperature", temperature=2.0), 4, seed=0)
    names = [sampler.next()[0] for _ in range(3000)]
    assert names.count("small") / len(names) == pytest.approx(1 / 3, abs=0.03)


def test_sampler_is_deterministic_and_resumable():
    config = SamplerConfig(kind="temperature")

    def draws(sampler, n):
        return [(name, index.tolist()) for name, index in (sampler.next() for _ in range(n))]

    first = draws(make_sampler(SIZES, config, 8, seed=5), 120)
    assert first == draws(make_sampler(SIZES, config, 8, seed=5), 120)
    assert first != draws(make_sampler(SIZES, config, 8, seed=6), 120)

    sampler = make_sampler(SIZES, config, 8, seed=5)
    draws(sampler, 70)
    resumed = make_sampler(SIZES, config, 8, seed=5)
    resumed.load_state_dict(json.loads(json.dumps(sampler.state_dict())))  # as trainer_state.json stores it
    assert draws(resumed, 50) == first[70:]


def test_sampler_gives_processes_disjoint_shares():
    sizes = {"a": 100, "b": 37}
    config = SamplerConfig(kind="uniform")
    processes = [make_sampler(sizes, config, 8, seed=3, process_index=i, num_processes=2) for i in range(2)]
    used: dict[tuple[str, int], set[int]] = {}
    for _ in range(300):
        (name0, rows0), (name1, rows1) = (p.next() for p in processes)
        assert name0 == name1  # every process trains the same task in a micro-batch
        assert len(rows0) == len(rows1) == 8
        assert not set(rows0.tolist()) & set(rows1.tolist())
        assert processes[0].epoch == processes[1].epoch
        seen = used.setdefault((name0, processes[0].epoch[name0]), set())
        batch = set(rows0.tolist()) | set(rows1.tolist())
        assert not seen & batch  # no row twice within an epoch, on any process
        seen |= batch
        assert all(0 <= r < sizes[name0] for r in batch)
    assert max(epoch for _, epoch in used) > 1
    full = [rows for (name, _), rows in used.items() if name == "a"][:-1]  # the last epoch may be partial
    assert all(len(rows) == 96 for rows in full)  # 100 rows -> 6 global batches of 16, the tail dropped


@pytest.mark.parametrize(("rows", "num_processes"), [(5, 1), (12, 2), (5, 2)])
def test_sampler_task_smaller_than_a_global_batch_wraps_to_full_shares(rows, num_processes):
    """Every process gets a full ``batch_size`` share, even from a task smaller than one
    global batch (the sampler wraps around it). BUG today for a share that is short but
    not empty: (5, 1) gives 5 rows, (12, 2) gives process 1 only 4 rows."""
    processes = [make_sampler({"tiny": rows}, SamplerConfig(), 8, seed=0, process_index=i,
                              num_processes=num_processes) for i in range(num_processes)]
    for _ in range(3):
        for sampler in processes:
            name, index = sampler.next()
            assert name == "tiny" and len(index) == 8, (sampler.process_index, index)
            assert all(0 <= r < rows for r in index.tolist())


# ----------------------------------------------------------------------------- batching


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(load_config(SMOKE_CONFIG).encoder.name)


def _pair_frame(texts, others):
    n = len(texts)
    return pd.DataFrame({"row_id": range(n), "text": texts, "other": others, "x": [0.0] * n,
                         "shop": ["uk"] * n, "value": [1.0] * n, "flag": [1.0] * n})


def _bucket_rows(batch):
    """The batch's distinct texts as token lists, in position order across its buckets."""
    return [ids[mask.bool()].tolist() for ids_b, mask_b in text_buckets(batch) for ids, mask in zip(ids_b, mask_b)]


def test_make_batch_encodes_each_distinct_text_once(tokenizer):
    bank = TextBank(tokenizer, max_length=48)
    texts = ["red mug", "red mug", "blue bag", "red mug", "green heart card", "blue bag"]
    others = ["mug", "bag", "mug", "red mug", "mug", "glass"]
    frame = _pair_frame(texts, others)
    rows = encode_rows(TOY_BINARY, frame, FeatureState.fit(TOY_BINARY, frame), bank)
    assert len(bank) == len(set(texts) | set(others))  # the bank interns each string once

    index = np.array([0, 1, 3, 5, 2])
    batch = make_batch(rows, index, bank)
    distinct = {texts[i] for i in index} | {others[i] for i in index}
    assert "input_ids_1" not in batch  # similar lengths: one bucket
    assert batch["input_ids"].shape[0] == len(distinct) < 2 * len(index)
    assert batch["text_pos"].shape == batch["pair_pos"].shape == (len(index),)
    assert batch["labels"].shape == (len(index), 1)

    decoded = _bucket_rows(batch)
    for k, i in enumerate(index):
        assert decoded[batch["text_pos"][k]] == tokenizer(texts[i])["input_ids"]
        assert decoded[batch["pair_pos"][k]] == tokenizer(others[i])["input_ids"]

    # Padding is dynamic: the width is the longest text of this batch, not max_length.
    longest = max(len(tokenizer(t)["input_ids"]) for t in distinct)
    assert batch["input_ids"].shape[1] == batch["attention_mask"].shape[1] == longest < 48
    assert batch["attention_mask"].sum(dim=1).max() == longest
    assert torch.all(batch["input_ids"][batch["attention_mask"] == 0] == bank.pad_id)

    narrow = make_batch(rows, np.array([0, 1]), bank)  # "red mug" / "mug", "bag"
    assert narrow["input_ids"].shape == (3, max(len(tokenizer(t)["input_ids"]) for t in ("red mug", "mug", "bag")))


def test_make_batch_pads_long_and_short_texts_in_separate_buckets(tokenizer):
    # A recommend-like batch: long histories paired with short product names.
    bank = TextBank(tokenizer, max_length=64)
    histories = ["red mug ; blue bag ; green heart card ; glass candle holder ; paper cake case " * 3,
                 "white hanging heart t-light holder ; wall clock ; rose necklace " * 3]
    texts = [histories[i % 2] for i in range(6)]
    others = ["mug", "bag", "red mug", "heart card", "glass", "candle"]
    frame = _pair_frame(texts, others)
    rows = encode_rows(TOY_BINARY, frame, FeatureState.fit(TOY_BINARY, frame), bank)
    batch = make_batch(rows, np.arange(6), bank)

    short, long = text_buckets(batch)
    assert short[0].shape[0] == len(set(others)) and long[0].shape[0] == 2
    widest = max(len(tokenizer(t, truncation=True, max_length=64)["input_ids"]) for t in histories)
    assert short[0].shape[1] == max(len(tokenizer(t)["input_ids"]) for t in others) < long[0].shape[1] == widest
    decoded = _bucket_rows(batch)
    for k in range(6):
        assert decoded[batch["text_pos"][k]] == tokenizer(texts[k], truncation=True, max_length=64)["input_ids"]
        assert decoded[batch["pair_pos"][k]] == tokenizer(others[k])["input_ids"]

    # With tokens=True, every distinct text's ids in position order, for heads that read tokens.
    tokens = make_batch(rows, np.arange(6), bank, tokens=True)["tokens"]
    assert [row[row != bank.pad_id].tolist() for row in tokens] == decoded

    # The split is only made where it saves padding (at least MIN_BUCKET_SAVING of the tokens).
    assert bucket_split(np.array([5, 6, 7, 8])) == 0
    assert bucket_split(np.array([3, 4, 4, 60, 64])) == 3
    assert bucket_split(np.array([7])) == 0

    # Encoding the buckets separately gives the pooled vectors of one tensor padded to the longest.
    encoder = build_encoder(load_config(SMOKE_CONFIG).encoder).eval()
    flat_ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(r) for r in decoded], batch_first=True,
                                               padding_value=bank.pad_id)
    flat_mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(r), dtype=torch.long) for r in decoded], batch_first=True)
    with torch.no_grad():
        separate = torch.cat([encoder(ids, mask) for ids, mask in text_buckets(batch)])
        together = encoder(flat_ids, flat_mask)
    torch.testing.assert_close(separate, together, atol=1e-5, rtol=1e-4)


def test_make_batch_truncates_to_max_length_and_omits_missing_pair(tokenizer):
    bank = TextBank(tokenizer, max_length=12)
    frame = _pair_frame(["mug " * 40, "bag", "bag"], ["a", "b", "c"])
    rows = encode_rows(TOY_REGRESSION, frame, FeatureState.fit(TOY_REGRESSION, frame), bank)
    batch = make_batch(rows, np.array([1, 2]), bank)
    assert "pair_pos" not in batch  # toy_value has no text pair
    assert batch["input_ids"].shape[0] == 1 and batch["text_pos"].tolist() == [0, 0]
    assert batch["numeric"].shape == batch["numeric_missing"].shape == (2, 1)
    assert batch["categorical"].shape == (2, 1)
    long_batch = make_batch(rows, np.array([0, 1]), bank)
    assert [ids.shape for ids, _ in text_buckets(long_batch)] == [(1, 3), (1, 12)]  # capped at max_length


def test_feature_head_wide_path_starts_at_zero_and_learns():
    from shopmtl.registry.blocks import FeatureHead
    from shopmtl.registry.spec import HeadInput, HeadSpec

    torch.manual_seed(0)
    head = FeatureHead(HeadSpec(hidden_size=8, n_numeric=2, categorical_cardinalities=(3,), has_pair=False, n_outputs=1))
    x = HeadInput(text=torch.randn(16, 8), pair=None, numeric=torch.randn(16, 2), numeric_missing=torch.zeros(16, 2),
                  categorical=torch.zeros(16, 1, dtype=torch.long))
    head.eval()
    assert torch.equal(head.wide.weight, torch.zeros_like(head.wide.weight))
    before = head(x)
    # At initialisation the head is exactly its MLP; the wide path gets gradient from the start.
    mlp_only = head.mlp(torch.cat([x.text, x.numeric, x.numeric_missing, head.embeddings[0](x.categorical[:, 0])], dim=-1))
    torch.testing.assert_close(before, mlp_only)
    F.mse_loss(before, 3.0 * x.numeric[:, :1]).backward()
    assert head.wide.weight.grad[0, 0] < 0  # pushed towards the +3 slope on the first feature
    # A head without numeric or categorical features has no wide path.
    plain = FeatureHead(HeadSpec(hidden_size=8, n_numeric=0, categorical_cardinalities=(), has_pair=True, n_outputs=2))
    assert plain.wide is None and plain.text_bag is None


def test_feature_head_bag_of_words_averages_token_weights():
    from shopmtl.registry.blocks import FeatureHead, wide_parameters
    from shopmtl.registry.spec import HeadInput, HeadSpec

    head = FeatureHead(HeadSpec(hidden_size=8, n_numeric=0, categorical_cardinalities=(), has_pair=True,
                                n_outputs=2, vocab_size=10, pad_token_id=0)).eval()
    assert set(map(id, wide_parameters(head))) == {id(head.text_bag.weight), id(head.pair_bag.weight)}
    text, pair = torch.randn(2, 8), torch.randn(2, 8)
    tokens = torch.tensor([[3, 4, 0], [5, 0, 0]])
    with torch.no_grad():
        head.text_bag.weight.copy_(torch.arange(20.0).reshape(10, 2))
        without = head(HeadInput(text=text, pair=pair, numeric=torch.zeros(2, 0), numeric_missing=torch.zeros(2, 0),
                                 categorical=torch.zeros(2, 0, dtype=torch.long)))
        with_tokens = head(HeadInput(text=text, pair=pair, numeric=torch.zeros(2, 0), numeric_missing=torch.zeros(2, 0),
                                     categorical=torch.zeros(2, 0, dtype=torch.long), text_tokens=tokens,
                                     pair_tokens=tokens))
    # Mean of the rows of tokens 3 and 4 ((6, 7) and (8, 9)) and of token 5; padding left out.
    # The pair's bag is still zero.
    torch.testing.assert_close(with_tokens - without, torch.tensor([[7.0, 8.0], [10.0, 11.0]]))
