"""A diverging run stops with words, exit non-zero, and writes no NaN weight."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from conftest import toy_config, toy_plugin_set
from shopmtl.core.config import load_config
from shopmtl.core.engine.guards import (
    TrainingDiverged,
    check_gradient_norm,
    check_loss,
    check_weights,
)
from shopmtl.core.engine.trainer import train

CONFIG = load_config(None, [])


def test_check_loss_names_task_step_and_the_learning_rates():
    check_loss(0.5, "sales", 3, CONFIG)
    with pytest.raises(
        TrainingDiverged,
        match=r"step 7: task 'price_bin' has a nan loss; likely causes: a learning rate "
        r"too high \(training.learning_rate=0.0002",
    ):
        check_loss(float("nan"), "price_bin", 7, CONFIG)
    with pytest.raises(TrainingDiverged, match="inf loss"):
        check_loss(float("inf"), "sales", 1, CONFIG)


def test_check_gradient_norm_and_weights():
    check_gradient_norm(torch.tensor(3.0), 1, CONFIG)
    check_gradient_norm(None, 1, CONFIG)  # no clipping configured: nothing to check
    with pytest.raises(TrainingDiverged, match="gradient norm is inf"):
        check_gradient_norm(torch.tensor(float("inf")), 2, CONFIG)
    check_weights([("a", torch.ones(3))], 1, CONFIG)
    with pytest.raises(TrainingDiverged, match=r"weight heads.x.weight holds NaN"):
        check_weights(
            [("a", torch.ones(3)), ("heads.x.weight", torch.tensor([1.0, float("nan")]))], 4, CONFIG
        )


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_huge_learning_rate_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    """BUG before: lr=1e6 trained to NaN weights, exited 0 and `predict` answered NaN."""
    out = tmp_path / "run"
    plugins = toy_plugin_set()
    train(
        toy_config(out, "training.max_steps=10", "training.eval_every=5"), plugins, progress=False
    )
    before = _digest(out / "model")
    diverging = toy_config(
        out,
        "training.max_steps=40",
        "training.eval_every=5",
        "training.learning_rate=1e6",
        "training.head_learning_rate=1e6",
        "training.wide_learning_rate=1e6",
        "training.max_grad_norm=null",
    )
    with pytest.raises(
        TrainingDiverged, match=r"training stopped at step \d+: .*learning rate too high"
    ):
        train(diverging, plugins, overwrite=True, progress=False)
    after = _digest(out / "model")
    for name, digest in after.items():
        if name.endswith(".safetensors") and name in before and digest != before[name]:
            from safetensors.torch import load_file

            assert all(torch.isfinite(t).all() for t in load_file(out / "model" / name).values()), (
                name
            )


def test_a_second_process_on_the_same_run_directory_fails_at_once(tmp_path):
    """BUG before: two `shopmtl train` on one --output-dir both ran; one silently replaced the other."""
    import subprocess
    import sys
    import textwrap

    from shopmtl.core.runs.rundir import (
        RunDirectoryError,
        claim_output_dir,
        lock_path,
        release_output_dir,
    )

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from shopmtl.core.runs.rundir import claim_output_dir
        claim_output_dir(Path({str(out)!r}))
        print("held", flush=True)
        time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            RunDirectoryError, match=r"is in use: another shopmtl process is training into it"
        ):
            train(toy_config(out), toy_plugin_set(), progress=False)
        assert not out.exists()  # nothing was written into the folder the other process owns
    finally:
        holder.kill()
        holder.wait()
    claim_output_dir(out)  # the dead process's lock is free again (the OS released it)
    release_output_dir(out)
    assert lock_path(out.resolve()).parent == tmp_path
