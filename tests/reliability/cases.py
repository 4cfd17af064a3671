"""The reliability cases: every fault of issue #10, and more, with the outcome each must have.

Corrupt files, ``--resume`` and the run directory here; plugin code, labels, inputs and
``predict`` in :mod:`reliability.cases_inputs`.

Each ``prepare`` gets the case folder ``ws`` (holding ``run/``, a copy of the toy run)
and returns the ``shopmtl`` arguments. docs/reliability.md tabulates these cases; a
test keeps the table and this list in step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from reliability.cases_inputs import PLUGIN_ERRORS, PREDICT
from reliability.harness import (
    SMOKE,
    TINY,
    TOY,
    Case,
    copy_run,
    flip_bytes,
    invoke,
    partial_of,
    random_bytes,
    rows_file,
    truncate,
)

MODEL = Path("run") / "model"
LAST = Path("run") / "checkpoints" / "last"
DIVERGE = (
    "training.learning_rate=1e6",
    "training.head_learning_rate=1e6",
    "training.wide_learning_rate=1e6",
    "training.max_grad_norm=null",
    "training.max_steps=20",
    "training.eval_every=5",
)


def predict_args(ws: Path, *extra: str) -> list[str]:
    return [
        "predict",
        str(ws / "run"),
        "--task",
        "toy_value",
        "--input",
        str(rows_file(ws)),
        "--output",
        str(ws / "out.csv"),
        *extra,
    ]


def _break(relative: Path, how, *args):
    """A ``prepare`` that breaks ``ws/relative`` with ``how``; the command comes after."""

    def prepare(ws: Path, command) -> list[str]:
        how(ws / relative, *args)
        return command(ws)

    return prepare


def evaluate(ws: Path) -> list[str]:
    return ["evaluate", str(ws / "run")]


def report(ws: Path) -> list[str]:
    return ["report", str(ws / "run")]


def train_from(ws: Path) -> list[str]:
    return ["train", *TOY, *TINY, "--from", str(ws / "run"), "--output-dir", str(ws / "new")]


def resume(ws: Path) -> list[str]:
    return ["train", "--resume", "--output-dir", str(ws / "run"), "training.max_steps=40"]


def on(relative: Path, how, command, *args):
    return lambda ws: _break(relative, how, *args)(ws, command)


def _drop_from_manifest(path: Path) -> None:
    """Copy toy_flag's head over toy_value's, and forget toy_value's entry in the run's manifest."""
    manifest = path.parents[2] / "manifest.json"
    data = json.loads(manifest.read_text())
    del data["files"]["model/heads/toy_value.safetensors"]
    manifest.write_text(json.dumps(data))
    shutil.copyfile(path.parent / "toy_flag.safetensors", path)


def _copy_flag_head(path: Path) -> None:
    shutil.copyfile(path.parent / "toy_flag.safetensors", path)


def _earlier_report(ws: Path) -> list[str]:
    """A report written earlier (kept: the new one fails before touching it), then a corrupt head."""
    (ws / "run" / "report").mkdir()
    (ws / "run" / "report" / "index.html").write_text("<html>the earlier report</html>")
    (ws / "run" / "report" / "loss.png").write_bytes(b"png")
    random_bytes(ws / MODEL / "heads" / "toy_flag.safetensors")
    return report(ws)


def _empty(path: Path) -> None:
    path.write_text("")


def _delete(path: Path) -> None:
    path.unlink()


def _loads(ws: Path, result) -> None:
    """The run still loads and evaluates (the previous run was kept intact)."""
    again = invoke("toy", ["evaluate", str(ws / "run")])
    assert again.exit_code == 0, again.output


# ----------------------------------------------------------------------------- corrupt, truncated, foreign, missing files

CORRUPT = [
    Case(
        "evaluate-truncated-encoder",
        "`evaluate`, model/encoder.safetensors truncated",
        on(MODEL / "encoder.safetensors", truncate, evaluate),
        1,
        ("model/encoder.safetensors", "truncated"),
    ),
    Case(
        "predict-truncated-encoder",
        "`predict`, model/encoder.safetensors truncated",
        on(MODEL / "encoder.safetensors", truncate, predict_args),
        1,
        ("model/encoder.safetensors", "truncated"),
        guarded=("run", "in.csv"),
        absent=("out.csv",),
    ),
    Case(
        "report-truncated-encoder",
        "`report`, model/encoder.safetensors truncated",
        on(MODEL / "encoder.safetensors", truncate, report),
        1,
        ("model/encoder.safetensors", "truncated"),
        absent=("run/report/index.html",),
    ),
    Case(
        "from-truncated-encoder",
        "`train --from`, the source's encoder truncated",
        on(MODEL / "encoder.safetensors", truncate, train_from),
        1,
        ("model/encoder.safetensors", "truncated"),
        absent=("new",),
    ),
    Case(
        "evaluate-random-head",
        "`evaluate`, a head file replaced by random bytes",
        on(MODEL / "heads" / "toy_value.safetensors", random_bytes, evaluate),
        1,
        ("heads/toy_value.safetensors", "sha256", "corrupt"),
    ),
    Case(
        "predict-flipped-tensor-bytes",
        "`predict`, random bytes inside a tensor (the header still valid)",
        on(MODEL / "encoder.safetensors", flip_bytes, predict_args),
        1,
        ("model/encoder.safetensors", "does not match the sha256", "corrupt"),
        guarded=("run", "in.csv"),
        absent=("out.csv",),
    ),
    Case(
        "evaluate-foreign-head",
        "`evaluate`, another task's head copied over a head",
        on(MODEL / "heads" / "toy_value.safetensors", _copy_flag_head, evaluate),
        1,
        ("heads/toy_value.safetensors", "is a copy of model/heads/toy_flag.safetensors", "foreign"),
    ),
    Case(
        "evaluate-foreign-head-unlisted",
        "`evaluate`, another task's head copied in by hand, not in the manifest",
        on(MODEL / "heads" / "toy_value.safetensors", _drop_from_manifest, evaluate),
        1,
        ("heads/toy_value.safetensors", "is not listed in", "run/manifest.json"),
    ),
    Case(
        "evaluate-missing-encoder",
        "`evaluate`, model/encoder.safetensors deleted",
        on(MODEL / "encoder.safetensors", _delete, evaluate),
        1,
        ("model/encoder.safetensors is missing",),
    ),
    Case(
        "predict-truncated-features",
        "`predict`, model/features.json truncated",
        on(MODEL / "features.json", truncate, predict_args),
        1,
        ("model/features.json", "truncated or was replaced"),
        guarded=("run", "in.csv"),
        absent=("out.csv",),
    ),
    Case(
        "evaluate-empty-config",
        "`evaluate`, the run's config.yaml emptied",
        on(Path("run") / "config.yaml", _empty, evaluate),
        1,
        ("run/config.yaml", "truncated or was replaced"),
    ),
    Case(
        "report-random-head",
        "`report`, a head file replaced by random bytes",
        on(MODEL / "heads" / "toy_flag.safetensors", random_bytes, report),
        1,
        ("heads/toy_flag.safetensors", "sha256"),
        absent=("run/report/index.html",),
    ),
    Case(
        "report-keeps-earlier-report",
        "`report` on a corrupt run that already has a report",
        lambda ws: _earlier_report(ws),
        1,
        ("heads/toy_flag.safetensors", "sha256"),
    ),
    Case(
        "from-flipped-head",
        "`train --from`, random bytes inside a source head",
        on(MODEL / "heads" / "toy_value.safetensors", flip_bytes, train_from),
        1,
        ("heads/toy_value.safetensors", "does not match the sha256"),
        absent=("new",),
    ),
    Case(
        "resume-truncated-head",
        "`--resume`, a checkpoint head truncated",
        on(LAST / "heads" / "toy_value.safetensors", truncate, resume),
        1,
        ("checkpoints/last/heads/toy_value.safetensors", "cannot be resumed", "--overwrite"),
    ),
    Case(
        "resume-truncated-state",
        "`--resume`, checkpoints/last/trainer_state.json truncated",
        on(LAST / "trainer_state.json", truncate, resume),
        1,
        ("checkpoints/last/trainer_state.json", "truncated or was replaced"),
    ),
    Case(
        "resume-random-optimizer",
        "`--resume`, optimizer.safetensors replaced by random bytes",
        on(LAST / "optimizer.safetensors", random_bytes, resume),
        1,
        ("checkpoints/last/optimizer.safetensors",),
    ),
    Case(
        "resume-missing-encoder",
        "`--resume`, the checkpoint's encoder deleted",
        on(LAST / "encoder.safetensors", _delete, resume),
        1,
        ("checkpoints/last/encoder.safetensors is missing",),
    ),
    Case(
        "predict-run-without-manifest",
        "`predict` on a run without its manifest (written before manifests, or removed)",
        on(Path("run") / "manifest.json", _delete, predict_args),
        1,
        ("run/manifest.json is missing", "--trust-unverified"),
        guarded=("run", "in.csv"),
        absent=("out.csv",),
    ),
    Case(
        "predict-run-without-manifest-trusted",
        "`predict --trust-unverified` on a run without its manifest",
        lambda ws: [
            *_break(Path("run") / "manifest.json", _delete)(ws, predict_args),
            "--trust-unverified",
        ],
        0,
        ("wrote 6 rows",),
        guarded=("run", "in.csv"),
    ),
]


# ----------------------------------------------------------------------------- --resume and the run's own config


def _resume_with(*args: str):
    return lambda ws: ["train", *args, "--resume", "--output-dir", str(ws / "run")]


def _resumed_with_the_runs_config(ws: Path, result) -> None:
    import yaml

    config = yaml.safe_load((ws / "run" / "config.yaml").read_text())
    assert config["training"]["max_steps"] == 40 and config["encoder"]["random_init"] is True
    assert (
        config["tasks"] == {} and config["run_name"] == "smoke"
    )  # the run's, not the built-in default's
    assert json.loads((ws / "run" / "metrics.json").read_text())["steps"] == 40
    assert not partial_of(ws).exists()


def _notes(ws: Path) -> list[str]:
    (ws / "notes").mkdir()
    (ws / "notes" / "mine.txt").write_text("mine")
    return ["train", *TOY, "--resume", "--output-dir", str(ws / "notes")]


RESUME = [
    Case(
        "resume-other-learning-rate",
        "`--resume` with a config file whose learning rate differs",
        _resume_with(*TOY, "training.learning_rate=0.01"),
        1,
        (
            "training.learning_rate: the run has 0.001, given 0.01",
            "safe to change",
            "training.max_steps",
        ),
    ),
    Case(
        "resume-unsafe-override",
        "`--resume` with an override of a key that changes training",
        _resume_with("training.batch_size=8"),
        1,
        ("training.batch_size: the run has 16, given 8",),
    ),
    Case(
        "resume-other-tasks",
        "`--resume` with --task naming fewer tasks",
        lambda ws: ["train", "--resume", "--output-dir", str(ws / "run"), "--task", "toy_value"],
        1,
        ("tasks", "differs from the run's own"),
    ),
    Case(
        "resume-uses-the-runs-config",
        "`train --resume --output-dir RUN training.max_steps=40`, no config file",
        _resume_with("training.max_steps=40"),
        0,
        ("Run written to",),
        guarded=(),
        then=_resumed_with_the_runs_config,
    ),
    Case(
        "resume-same-config-file",
        "`--resume` with the run's own config file and overrides",
        _resume_with(*TOY),
        0,
        ("Run written to",),
        guarded=(),
    ),
    Case(
        "resume-without-checkpoint",
        "`--resume` on a folder holding other files, no checkpoint",
        _notes,
        1,
        ("no checkpoint to resume from",),
        guarded=("notes",),
    ),
]


# ----------------------------------------------------------------------------- the run directory as a transaction


def _interrupted(ws: Path, *, checkpoint: bool = True) -> Path:
    """A working folder as a killed run leaves it: a checkpoint (or only a half-written first one)."""
    partial = partial_of(ws, "new")
    copy_run(ws / "run", partial)
    (partial / "metrics.json").unlink()
    if not checkpoint:
        shutil.rmtree(partial / "checkpoints" / "last")
        shutil.rmtree(partial / "model")
        (partial / "checkpoints" / ".last.k2x9q").mkdir()
        (partial / "checkpoints" / ".last.k2x9q" / "encoder.safetensors").write_bytes(b"\0" * 100)
    return partial


def _new_over_interrupted(ws: Path) -> list[str]:
    _interrupted(ws)
    return ["train", *TOY, "--output-dir", str(ws / "new")]


def _stale(ws: Path) -> list[str]:
    partial = _interrupted(ws)
    (partial / "checkpoints" / ".last.a1b2c3").mkdir()
    (partial / "checkpoints" / ".last.a1b2c3" / "encoder.safetensors").write_bytes(b"half")
    (partial / ".model.z9y8x7").mkdir()
    (partial / ".metrics.json.q1w2e3").write_text("{")
    return ["train", "--resume", "--output-dir", str(ws / "new")]


def _no_stale_left(ws: Path, result) -> None:
    assert not list((ws / "new" / "checkpoints").glob(".last.*")) and not list(
        (ws / "new").glob(".*")
    )
    assert (ws / "new" / "metrics.json").is_file() and not partial_of(ws, "new").exists()


def _first_checkpoint_killed(ws: Path) -> list[str]:
    _interrupted(ws, checkpoint=False)
    return ["train", *TOY, *TINY, "--resume", "--output-dir", str(ws / "new")]


def _from_scratch(ws: Path, result) -> None:
    assert json.loads((ws / "new" / "metrics.json").read_text())["steps"] == 4
    assert not partial_of(ws, "new").exists()


def _commit_killed(ws: Path) -> list[str]:
    """Killed between the two renames of a commit: the previous run set aside, the new one incomplete."""
    os.replace(ws / "run", ws / ".run.shopmtl-old")
    partial = partial_of(ws)
    partial.mkdir()
    (partial / "config.yaml").write_text("run_name: half\n")
    return ["train", *TOY, "--output-dir", str(ws / "run")]


def _previous_restored(ws: Path, result) -> None:
    assert not (ws / ".run.shopmtl-old").exists() and (ws / "run" / "metrics.json").is_file()
    _loads(ws, result)


TRANSACTIONS = [
    Case(
        "train-into-finished-run",
        "`train` into a folder that holds a finished run",
        lambda ws: ["train", *TOY, "--output-dir", str(ws / "run")],
        1,
        ("already holds a run", "--resume", "--overwrite"),
    ),
    Case(
        "overwrite-crash-keeps-previous",
        "`--overwrite` whose new run crashes (a plugin error)",
        lambda ws: [
            "train",
            SMOKE,
            "tasks={}",
            *TINY,
            "--task",
            "typo_value",
            "--overwrite",
            "--output-dir",
            str(ws / "run"),
        ],
        1,
        ("task 'typo_value'", "KeyError"),
        plugins="faulty",
        then=_loads,
    ),
    Case(
        "overwrite-diverges-keeps-previous",
        "`--overwrite` whose new run diverges (learning rate 1e6)",
        lambda ws: ["train", *TOY, *DIVERGE, "--overwrite", "--output-dir", str(ws / "run")],
        1,
        ("training stopped at step", "learning rate too high"),
        then=_loads,
    ),
    Case(
        "new-over-interrupted-run",
        "`train` (no flag) where an interrupted run waits to be resumed",
        _new_over_interrupted,
        1,
        ("interrupted run", "--resume", "--overwrite"),
        guarded=(".new.shopmtl-partial",),
    ),
    Case(
        "resume-sweeps-stale-temporaries",
        "`--resume` with stale checkpoints/.last.*, .model.*, .metrics.json.* left",
        _stale,
        0,
        ("Run written to",),
        guarded=(),
        then=_no_stale_left,
    ),
    Case(
        "resume-first-checkpoint-killed",
        "`--resume` after a kill during the first checkpoint",
        _first_checkpoint_killed,
        0,
        ("training from scratch", "Run written to"),
        guarded=(),
        then=_from_scratch,
    ),
    Case(
        "commit-killed-restores-previous",
        "the next `train` after a kill between the two renames of a commit",
        _commit_killed,
        1,
        ("already holds a run",),
        guarded=(),
        then=_previous_restored,
    ),
]


# A weights problem is one line (the message names the file and what to do).
CORRUPT = [dataclasses.replace(case, one_line=True) if case.exit_code else case for case in CORRUPT]
CASES = [*CORRUPT, *RESUME, *TRANSACTIONS, *PLUGIN_ERRORS, *PREDICT]
