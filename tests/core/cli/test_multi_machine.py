"""Training across machines: two ``accelerate launch --num_machines 2`` commands, one per machine.

Both "machines" are this one (``--main_process_ip 127.0.0.1``), one process each, over
gloo on CPU -- the launch a cluster uses, with the network left out. The run must be the
one a single machine with two processes trains (``--num_processes 2``): the same
per-process shares of the data, the same task draws, the same averaged gradients, so the
same weights bit for bit and the same metrics. docs/training.md ("Several machines")
shows these commands.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, SMOKE_CONFIG
from launches import stop_group
from safetensors.torch import load_file

pytestmark = pytest.mark.integration

ACCELERATE = str(Path(sys.executable).parent / "accelerate")
#: A smoke-sized run: two built-in tasks, six steps, two validations (about 20 s per launch on 2 cores).
TRAIN = [
    "-m",
    "shopmtl.core.cli",
    "train",
    str(SMOKE_CONFIG),
    "--task",
    "sales",
    "--task",
    "price_bin",
    "training.max_steps=6",
    "training.eval_every=3",
]
LAUNCH = [
    "launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "RANK",
            "LOCAL_RANK",
            "WORLD_SIZE",
            "MASTER_ADDR",
            "MASTER_PORT",
            "SHOPMTL_STRICT_PLUGINS",
        }
    }
    env["SHOPMTL_PLUGINS"] = ""  # the built-ins only, whatever else is installed
    env["OMP_NUM_THREADS"] = "1"  # four processes share the test machine's cores: one thread each
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _finish(processes: list[subprocess.Popen], timeout: float) -> list[str]:
    """Wait for every launch; on a failure or a timeout stop the others and show each one's output."""
    deadline, outputs = time.monotonic() + timeout, []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    finally:
        for process in processes:
            stop_group(process)
    failed = [(p.args, out) for p, out in zip(processes, outputs) if p.returncode != 0]
    assert not failed, "\n\n".join(f"{' '.join(args)} failed:\n{out}" for args, out in failed)
    return outputs


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [ACCELERATE, *args],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # its own process group: see launches.stop_group


def _weights(run: Path) -> dict[str, torch.Tensor]:
    model = run / "model"
    files = [model / "encoder.safetensors", *sorted((model / "heads").glob("*.safetensors"))]
    return {
        f"{path.name}:{key}": value for path in files for key, value in load_file(str(path)).items()
    }


def test_two_machines_train_what_one_machine_with_two_processes_trains(tmp_path):
    started = time.perf_counter()
    port = _free_port()
    machines = [
        _start(
            [
                *LAUNCH,
                "--num_machines",
                "2",
                "--machine_rank",
                str(rank),
                "--main_process_ip",
                "127.0.0.1",
                "--main_process_port",
                str(port),
                *TRAIN,
                "--output-dir",
                str(tmp_path / "two_machines"),
            ]
        )
        for rank in (0, 1)
    ]
    # The one-machine reference trains at the same time (its own port): the runs share nothing but the CPUs.
    one = _start(
        [
            *LAUNCH,
            "--num_machines",
            "1",
            "--main_process_port",
            str(_free_port()),
            *TRAIN,
            "--output-dir",
            str(tmp_path / "one_machine"),
        ]
    )
    outputs = _finish([*machines, one], timeout=300)[:2]
    print(f"\ntwo machines and one machine, side by side: {time.perf_counter() - started:.1f} s")

    for output in outputs:  # each machine's first process prints the header on its own machine
        assert "processes: 2" in output and "(each process trains on 128)" in output, output
    assert "Run written to" in outputs[0]  # the files are written by the main process, on machine 0
    two, one = tmp_path / "two_machines", tmp_path / "one_machine"
    assert json.loads((two / "environment.json").read_text())["processes"] == 2
    first, second = (
        json.loads((two / "metrics.json").read_text()),
        json.loads((one / "metrics.json").read_text()),
    )
    assert first["tasks"] == second["tasks"] and first["history"] == second["history"]
    assert first["steps"] == 6 and first["tasks"]["sales"]["test"]["rmse"] is not None
    weights, reference = _weights(two), _weights(one)
    assert weights.keys() == reference.keys() and len(weights) > 10
    different = [key for key in weights if not torch.equal(weights[key], reference[key])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
