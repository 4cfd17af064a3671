"""Sharded training (FSDP2 through accelerate) on CPU: the loop, ``model/`` in safetensors, checkpoints, resume.

Each run is two processes over gloo, launched by ``accelerate launch`` on
``tests/core/engine/fsdp_on_cpu.py``; that script says why it switches accelerate to FSDP
by hand on a machine without a GPU (accelerate selects FSDP only for GPU-family process
groups) -- past that switch every line is the product's own path. The checks:

* the sharded run trains what the same two processes train without sharding (DDP);
* ``model/`` holds whole weights in safetensors that ``predict`` reads like any run's;
* ``checkpoints/last`` holds accelerate's per-process shards, and a run killed after a
  checkpoint and resumed from it ends exactly where the uninterrupted run ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from accelerate.utils import DistributedType
from conftest import REPO, toy_config
from launches import stop_group
from safetensors.torch import load_file
from shopmtl.core.config import ConfigError, load_config
from shopmtl.core.engine.predict import load_run, predict_frame
from shopmtl.core.runs import fsdp
from shopmtl.core.runs.fsdp import check_sharding
from shopmtl.core.runs.transaction import work_dir
from toy_tasks import build

pytestmark = pytest.mark.integration

DRIVER = Path(__file__).with_name("fsdp_on_cpu.py")
ACCELERATE = str(Path(sys.executable).parent / "accelerate")


def _launch(*args: str) -> subprocess.Popen:
    with socket.socket() as probe:  # each launch its own rendezvous port: they run side by side
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT"}
    }
    env.update(SHOPMTL_PLUGINS="", OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [
            ACCELERATE,
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(port),
            str(DRIVER),
            *args,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait(*processes: subprocess.Popen) -> list[str]:
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300)[0])
    finally:
        for process in processes:
            stop_group(process)
    for process, output in zip(processes, outputs):
        errors = "\n".join(
            line for line in output.splitlines() if "Error:" in line
        )  # each process's own error
        assert process.returncode == 0, (
            f"{' '.join(process.args)} exited {process.returncode}:\n{errors}\n{output[-3000:]}"
        )
    return outputs


def _weights(run: Path) -> dict[str, torch.Tensor]:
    files = [
        run / "model" / "encoder.safetensors",
        *sorted((run / "model" / "heads").glob("*.safetensors")),
    ]
    return {
        f"{path.name}:{key}": value for path in files for key, value in load_file(str(path)).items()
    }


@pytest.fixture(scope="module")
def fsdp_runs(tmp_path_factory):
    """An FSDP run, the same run killed after its step-10 checkpoint, and the same two processes under DDP."""
    root = tmp_path_factory.mktemp("fsdp")
    started = time.perf_counter()
    whole, _, ddp = _wait(
        _launch(str(root / "fsdp")),
        _launch(str(root / "killed"), "--stop-at-draw", "15"),
        _launch(str(root / "ddp"), "--ddp"),
    )
    # an interrupted run waits in its working folder, beside the run directory, until resumed
    state = json.loads(
        (work_dir(root / "killed") / "checkpoints" / "last" / "trainer_state.json").read_text()
    )
    resumed = _wait(_launch(str(root / "killed"), "--resume"))[0]
    print(
        f"\nFSDP on CPU: 3 two-process runs side by side, then a resume: {time.perf_counter() - started:.1f} s"
    )
    return SimpleNamespace(root=root, whole=whole, ddp=ddp, resumed=resumed, killed_state=state)


def test_fsdp_trains_what_ddp_trains(fsdp_runs):
    assert (
        "trained 20 steps" in fsdp_runs.whole and "(each process trains on 120)" in fsdp_runs.whole
    )
    # examples/accelerate/fsdp.yaml wraps each BertLayer: the root plus the toy encoder's 2 layers
    assert "FSDP units: 3" in fsdp_runs.whole
    fsdp, ddp = _weights(fsdp_runs.root / "fsdp"), _weights(fsdp_runs.root / "ddp")
    assert fsdp.keys() == ddp.keys()
    for key in fsdp:  # same shares, same draws; only the order of the gradient sums differs
        torch.testing.assert_close(fsdp[key], ddp[key], rtol=1e-4, atol=1e-5, msg=key)


def test_fsdp_model_folder_is_whole_safetensors_that_predict_reads(fsdp_runs, toy_run, toy_plugins):
    run_dir = fsdp_runs.root / "fsdp"
    ours = _weights(run_dir)
    theirs = _weights(toy_run.output_dir)  # a one-process run's model folder
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    assert not [
        p
        for p in (run_dir / "model").rglob("*")
        if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".distcp"}
    ]
    loaded = load_run(run_dir, toy_plugins.tasks)
    test = build(SimpleNamespace(settings=None))["test"]
    scored = predict_frame(loaded, "toy_value", test)
    assert len(scored) == len(test) and scored.iloc[:, -1].notna().all()


def test_fsdp_checkpoint_holds_each_process_shard_and_resumes_exactly(fsdp_runs):
    last = fsdp_runs.root / "fsdp" / "checkpoints" / "last"
    assert fsdp.is_sharded_checkpoint(last)
    shards = sorted(p.name for p in (last / "accelerate" / "pytorch_model_fsdp_0").glob("*.distcp"))
    assert shards == [
        "__0_0.distcp",
        "__1_0.distcp",
    ]  # one file per process: nobody held the whole model
    assert sorted(p.name for p in (last / "accelerate" / "optimizer_0").glob("*.distcp")) == shards
    assert json.loads((last / "trainer_state.json").read_text())["step"] == 20
    assert not [
        p.name for p in last.parent.iterdir() if p.name.startswith(".")
    ]  # no staging left behind

    assert fsdp_runs.killed_state["step"] == 10 and fsdp_runs.killed_state["sampler"]["draws"] == 10
    assert "resumed from" in fsdp_runs.resumed and "at step 10 (sharded)" in fsdp_runs.resumed
    whole, resumed = fsdp_runs.root / "fsdp", fsdp_runs.root / "killed"
    first, second = (json.loads((run / "metrics.json").read_text()) for run in (whole, resumed))
    assert first["tasks"] == second["tasks"] and first["history"] == second["history"]
    weights, reference = _weights(resumed), _weights(whole)
    assert [k for k in weights if not torch.equal(weights[k], reference[k])] == []


def test_full_state_dict_splits_into_the_model_folder_files_and_back(toy_run):
    model = toy_run.model
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    files = fsdp.split_state(state, model)
    assert set(files) == {"encoder", "heads/toy_value", "heads/toy_flag"} | (
        {"weighting"}
        if model.weighting is not None and any(True for _ in model.weighting.parameters())
        else set()
    )
    again = fsdp.read_full_weights(toy_run.output_dir / "model", model)
    assert {k for k in again} <= set(state)
    with pytest.raises(ValueError, match="'stray.weight' belongs to no file"):
        fsdp.split_state({**state, "stray.weight": torch.zeros(1)}, model)


def _accelerator(kind: DistributedType, version: int = 2) -> SimpleNamespace:
    return SimpleNamespace(
        distributed_type=kind,
        state=SimpleNamespace(fsdp_plugin=SimpleNamespace(fsdp_version=version)),
    )


def test_a_sharded_run_refuses_what_it_cannot_do(tmp_path):
    config = toy_config(tmp_path)
    check_sharding(
        _accelerator(DistributedType.MULTI_CPU),
        toy_config(tmp_path, "training.gradient_surgery=pcgrad"),
    )
    check_sharding(_accelerator(DistributedType.FSDP), config)
    with pytest.raises(ConfigError, match="fsdp_version: 2"):
        check_sharding(_accelerator(DistributedType.FSDP, version=1), config)
    with pytest.raises(ConfigError, match="gradient_surgery=pcgrad .* set it to none"):
        check_sharding(
            _accelerator(DistributedType.FSDP),
            toy_config(tmp_path, "training.gradient_surgery=pcgrad"),
        )
    with pytest.raises(ConfigError, match="not DeepSpeed"):
        check_sharding(_accelerator(DistributedType.DEEPSPEED), config)


def test_cluster_examples_train_every_row_under_fsdp2():
    """examples/configs/full_data.yaml caps nothing; examples/accelerate/fsdp.yaml asks for FSDP2
    (its fsdp_config is what fsdp_on_cpu.py applies in the runs above)."""
    config = load_config(REPO / "examples" / "configs" / "full_data.yaml", [])
    assert set(config.tasks) == {"sales", "price_bin", "user_profile", "recommend"}
    assert all(
        t.max_train_examples is None and t.max_eval_examples is None for t in config.tasks.values()
    )
    assert config.training.validation_sample is None and config.encoder.freeze_layers == 0
    launcher = yaml.safe_load((REPO / "examples" / "accelerate" / "fsdp.yaml").read_text())
    assert launcher["distributed_type"] == "FSDP" and launcher["fsdp_config"]["fsdp_version"] == 2
    assert launcher["num_processes"] % launcher["num_machines"] == 0
