"""A prior is fitted once, on the main process, and handed to every process -- its error too."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from launches import stop_group
from shopmtl.core.engine.collective import on_main_shared

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("collective_on_cpu.py")


def test_work_runs_on_the_main_process_and_every_process_gets_its_result_or_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT"}
    }
    env["OMP_NUM_THREADS"] = "1"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "accelerate"),
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
            str(SCRIPT),
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = process.communicate(timeout=300)[0]
    finally:
        stop_group(process)
    assert process.returncode == 0, output
    seen = [json.loads((tmp_path / f"process-{index}.json").read_text()) for index in range(2)]
    assert [r["process"] for r in seen] == [0, 1], output
    assert [r["ran"] for r in seen] == [1, 0]  # the work ran on the main process only
    for record in seen:
        assert record["fitted_by"] == 0 and record["outputs"] == [0.0, 1.5, 3.0, 4.5]
        assert record["errors"] == [
            "PriorError: prior 'broken' raised ValueError",
            "RuntimeError: Unpicklable: holds a lambda",
        ]


def test_one_process_runs_the_work_itself():
    class OneProcess:
        num_processes, is_main_process = 1, True

    assert on_main_shared(OneProcess())(lambda: 42) == 42
