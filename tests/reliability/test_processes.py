"""What needs real processes: kill -9 in the middle of checkpoint writes, and two trains on one folder.

* A writer process (checkpoint_writer.py) saves real checkpoints of the toy model in a
  loop; it is killed with SIGKILL at 20 seeded random moments. After each kill, what
  ``--resume`` does first (open the run: sweep, restore) leaves a checkpoint that loads
  with every weights file matching its manifest -- or, when the kill came before the first
  save completed, an empty folder to train from scratch. The last trial is then resumed
  for real and trains to the end.
* Two ``shopmtl train`` processes on one ``--output-dir`` at once: one writes the run,
  the other stops with a message and writes nothing; the run is complete and loads.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, TOY_OVERRIDES, toy_config
from shopmtl.core.runs import checkpoint, manifest
from shopmtl.core.runs.transaction import open_run

from reliability.harness import SMOKE

HERE = Path(__file__).resolve().parent
SEED = 20261202
TRIALS = 20
SAVES_PER_TRIAL = (
    3  # the delays are uniform over this many save durations: kills land in every phase of a save,
)
# about one in three before the first save of a trial completed (the first-checkpoint case)


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", SHOPMTL_PLUGINS="")
    env.pop("SHOPMTL_DEBUG", None)
    return env


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    """The writer process, and how long one save took in it."""
    scratch = tmp_path_factory.mktemp("writer")
    process = subprocess.Popen(
        [sys.executable, str(HERE / "checkpoint_writer.py"), str(scratch)],
        cwd=REPO,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in iter(process.stdout.readline, ""):  # build_run's lines on the toy tasks come first
        if line.startswith("ready "):
            break
    else:
        pytest.fail(f"the checkpoint writer did not start (exit {process.wait()})")
    yield process, float(line.split()[1])
    process.stdin.close()
    process.kill()
    process.wait()


def _kill_during_writes(writer: subprocess.Popen, out: Path, delay: float) -> int:
    writer.stdin.write(f"{out} {delay:.4f}\n")
    writer.stdin.flush()
    word, saves = writer.stdout.readline().split()
    assert word == "killed"
    return int(saves)


def test_kill_9_at_20_random_moments_of_checkpoint_writes(writer, toy_plugins, tmp_path):
    writer, save_s = writer
    from shopmtl.core.engine.runtime import fresh_accelerator
    from shopmtl.core.engine.trainer import train
    from shopmtl.core.engine.training_run import build_run
    from shopmtl.core.runs.state import load_checkpoint

    loader = build_run(
        toy_config(tmp_path / "loader"),
        toy_plugins,
        fresh_accelerator(cpu=True),
        tmp_path,
        toy_plugins.tasks,
    )
    rng = random.Random(SEED)
    resumable_trials = 0
    for trial in range(TRIALS):
        out = tmp_path / f"run{trial}"
        saves = _kill_during_writes(writer, out, rng.uniform(0.0, SAVES_PER_TRIAL * save_s))
        print(f"trial {trial}: killed after {saves} complete saves")
        work, resumable = open_run(
            out, resume=True, overwrite=False
        )  # what `train --resume` does first
        leftovers = [
            p.name
            for p in [*work.iterdir(), *(work / "checkpoints").glob("*")]
            if p.name.startswith(".")
        ]
        assert leftovers == [], f"trial {trial}: stale temporaries {leftovers}"
        if not resumable:  # killed before the first save completed: a clean start from scratch
            assert saves == 0 and list(work.iterdir()) == [], f"trial {trial}: {saves} saves lost"
            continue
        resumable_trials += 1
        state = load_checkpoint(
            work / checkpoint.LAST_CHECKPOINT,
            loader.core,
            loader.optimizer,
            loader.sampler,
            loader.scheduler,
        )  # verifies every weights file against the manifest
        assert saves <= state.step <= saves + 1, (
            f"trial {trial}: step {state.step} after {saves} saves"
        )
        manifest.verify(work / checkpoint.MODEL_DIR)
        checkpoint.load_weights(work / checkpoint.MODEL_DIR, loader.core)
    assert resumable_trials >= 1  # (about two in three: the delays span three saves)

    # The last trial, resumed for real: training continues from its checkpoint to the end.
    result = train(toy_config(out), toy_plugins, resume=True, progress=False)
    assert result.steps == 30 and (out / "metrics.json").is_file() and not work.exists()


def test_two_trains_on_one_folder_one_writes_the_other_stops(tmp_path):
    out = tmp_path / "run"
    args = [
        sys.executable,
        str(HERE / "train_toy.py"),
        "train",
        SMOKE,
        *TOY_OVERRIDES,
        "training.eval_every=30",
        "--output-dir",
        str(out),
    ]
    first, second = (
        subprocess.Popen(
            args, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    )
    results = [(process.wait(timeout=300), *process.communicate()) for process in (first, second)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    ((_, _, refused),) = [r for r in results if r[0] == 1]
    # Started together, the second finds the folder locked; had it started later, it would find a finished run.
    assert (
        "is in use: another shopmtl process is training into it" in refused
        or "already holds a run" in refused
    )
    assert "Traceback" not in refused
    assert (out / "metrics.json").is_file() and not (tmp_path / ".run.shopmtl-partial").exists()
    from shopmtl.core.runs.checkpoint import source_model_dir

    source_model_dir(out)  # complete, and every weights file matches its manifest
