"""A process that writes real checkpoints of the toy model until it is killed: the kill -9 target.

Run as ``python checkpoint_writer.py SCRATCH_DIR``. It imports torch and builds the toy run once
(model, optimiser, sampler, tokenizer: ``build_run`` on the toy config), then reads one
line per trial from stdin -- ``RUN_DIR DELAY_SECONDS`` -- forks a child that saves
validations (``model/`` and ``checkpoints/last``, exactly as training does) into the
working folder of ``RUN_DIR`` in a loop (after answering ``ready SECONDS``: what one save
takes in a child, fork included), sleeps ``DELAY_SECONDS``, kills the child with
SIGKILL wherever it is in a write, and answers ``killed SAVES`` (how many saves had
completed, as the child reported them through a pipe). Forking keeps each trial cheap:
the imports and the model are paid for once, and each child is a real process dying
mid-write, as under kill -9.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

import torch  # noqa: E402
from conftest import toy_config, toy_plugin_set  # noqa: E402
from shopmtl.core.engine.periodic_eval import save  # noqa: E402
from shopmtl.core.engine.runtime import fresh_accelerator  # noqa: E402
from shopmtl.core.engine.training_run import build_run  # noqa: E402
from shopmtl.core.runs.state import TrainState  # noqa: E402
from shopmtl.core.runs.transaction import work_dir  # noqa: E402


def build(out: Path):
    """The toy run's objects, after one optimiser step (so the optimiser has state to save)."""
    torch.set_num_threads(1)
    config = toy_config(out)
    plugins = toy_plugin_set()
    accelerator = fresh_accelerator(cpu=True)
    run = build_run(config, plugins, accelerator, out, plugins.tasks)
    for parameter in run.core.parameters():
        parameter.grad = torch.zeros_like(parameter)
    run.optimizer.step()
    return run


def write_forever(run, report: int) -> None:
    """Save validations into the run's folder until killed; report each completed save on ``report``."""
    state = TrainState()
    while True:
        state.step += 1
        save(run, state, improved=True)
        os.write(report, b".")


def start_writer(run, folder: Path) -> tuple[int, int]:
    """Fork a child saving into ``folder`` forever; ``(child pid, read end of its report pipe)``."""
    run = dataclasses.replace(run, output_dir=folder)
    folder.mkdir(parents=True, exist_ok=True)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        try:
            write_forever(run, write)
        finally:
            os._exit(1)
    os.close(write)
    return child, read


def stop(child: int, read: int) -> int:
    """SIGKILL the child wherever it is; the number of saves it completed."""
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    saves = 0
    while chunk := os.read(read, 4096):
        saves += len(chunk)
    os.close(read)
    return saves


def main() -> None:
    scratch = Path(sys.argv[1])
    run = build(scratch)
    # Calibrate: how long a child takes per save, fork included (the trials' delays are scaled to it).
    started = time.perf_counter()
    child, read = start_writer(run, scratch / "calibration")
    for _ in range(3):
        os.read(read, 1)
    per_save = (time.perf_counter() - started) / 3
    stop(child, read)
    print(f"ready {per_save:.4f}", flush=True)
    for line in sys.stdin:
        target, delay = line.split()
        child, read = start_writer(run, work_dir(Path(target)))  # where a training run writes
        time.sleep(float(delay))
        print(f"killed {stop(child, read)}", flush=True)


if __name__ == "__main__":
    main()
