"""A run directory as a transaction: built beside the run, swapped in only when complete.

A run is written into its *working folder*, a hidden sibling of the run directory
(``runs/.try.shopmtl-partial`` for ``runs/try``), and :func:`commit` renames it into
place once ``metrics.json`` is written. Until then the run directory holds what it held
before -- the previous run, intact and loadable, when ``--overwrite`` replaces one -- so a
crash, a kill -9 or a full disk never leaves a new config beside old weights.

``--resume`` continues the working folder of an interrupted run (or a copy of a finished
run, to train it further); a working folder whose first checkpoint never completed is
started again from scratch. Temporary folders that a killed process left behind -- the
working folder of a run not being resumed, ``checkpoints/.last.*``, ``.model.*`` -- are
removed when the run directory is next opened. Everything here runs on the main process
while it holds the run directory's lock (:func:`~shopmtl.core.runs.rundir.claim_output_dir`),
so no other process is using these folders.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from shopmtl.core.runs import checkpoint, manifest
from shopmtl.core.runs.rundir import RunDirectoryError

_PARTIAL = ".shopmtl-partial"
_RETIRED = ".shopmtl-old"
#: What :func:`shopmtl.core.files.atomic_dir`/``atomic_file`` leave behind when killed mid-write:
#: ``.<name>.<random>`` staging copies and ``.<name>.old`` retired ones.
_STAGING = re.compile(r"^\.(model|last|[\w-]+\.(json|yaml))\.[\w.-]+$")


def work_dir(output_dir: Path) -> Path:
    """The working folder a run of ``output_dir`` is written into (the same on every process)."""
    return output_dir.parent / f".{output_dir.name}{_PARTIAL}"


def _has_checkpoint(folder: Path) -> bool:
    return (folder / checkpoint.LAST_CHECKPOINT / "trainer_state.json").is_file()


def _occupied(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def open_run(output_dir: Path, resume: bool, overwrite: bool) -> tuple[Path, bool]:
    """Prepare the working folder of a run of ``output_dir``; ``(folder, resumable)``.

    ``resumable``: the folder holds a complete checkpoint to continue from. Refuses, with
    the way forward, to replace a finished or interrupted run without ``--overwrite``.
    """
    finish_interrupted_commit(output_dir)
    work = work_dir(output_dir)
    if resume:
        if _has_checkpoint(work):
            sweep(work)
            return work, True
        if _has_checkpoint(output_dir):  # a finished run, trained further: on a copy, swapped in at the end
            last = output_dir / checkpoint.LAST_CHECKPOINT
            manifest.verify_run(output_dir, checkpoints=True)  # a bad file is named where it is, not in a copy
            checkpoint.check_contents(output_dir)
            checkpoint.read_json(last / "trainer_state.json")
            _fresh(work)
            shutil.copytree(output_dir, work, dirs_exist_ok=True)
            sweep(work)
            return work, True
        if _occupied(output_dir) and not work.exists():
            raise RunDirectoryError(f"--resume: {output_dir} holds no checkpoint to resume from (no checkpoints/last)")
        _fresh(work)  # nothing there, or a run killed before its first checkpoint completed: from scratch
        return work, False
    if _has_checkpoint(work) and not overwrite:
        raise RunDirectoryError(
            f"{output_dir} has an interrupted run (in {work}). Pass --resume to continue it, --overwrite to discard "
            "it, or choose another folder (--output-dir, or run_name=NAME).")
    if _occupied(output_dir) and not overwrite:
        raise RunDirectoryError(
            f"{output_dir} already holds a run. Pass --resume to continue it, --overwrite to replace it, "
            "or choose another folder (--output-dir, or run_name=NAME).")
    _fresh(work)
    return work, False


def _fresh(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)


def sweep(folder: Path) -> None:
    """Restore or remove what an interrupted atomic write left in a run's folder.

    A kill between the two renames of :func:`~shopmtl.core.files.atomic_dir` leaves the
    previous ``checkpoints/last`` (or ``model``) as ``.last.old``: it is complete, so it is
    put back. Every other staging copy is half-written and is removed.
    """
    for target in (folder / checkpoint.MODEL_DIR, folder / checkpoint.LAST_CHECKPOINT):
        retired = target.with_name(f".{target.name}.old")
        if not target.exists() and retired.is_dir():
            os.replace(retired, target)
    for parent in (folder, folder / "checkpoints"):
        if not parent.is_dir():
            continue
        for entry in parent.iterdir():
            if _STAGING.match(entry.name):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def finish_interrupted_commit(output_dir: Path) -> None:
    """Complete or undo a :func:`commit` that a kill cut between its two renames."""
    retired = output_dir.parent / f".{output_dir.name}{_RETIRED}"
    if not retired.exists():
        return
    if not output_dir.exists():
        work = work_dir(output_dir)
        finished = (work / "metrics.json").is_file()
        os.replace(work if finished else retired, output_dir)
    shutil.rmtree(retired, ignore_errors=True)


def commit(work: Path, output_dir: Path) -> Path:
    """Swap the complete working folder in as the run directory; the previous run goes only now.

    The run's manifest (every file, signed when ``SHOPMTL_SIGNING_KEY`` is set) is written
    into the working folder first, so the run directory never appears without one.
    """
    manifest.write_run_manifest(work)
    retired = output_dir.parent / f".{output_dir.name}{_RETIRED}"
    shutil.rmtree(retired, ignore_errors=True)
    if output_dir.exists():
        os.replace(output_dir, retired)
    os.replace(work, output_dir)
    shutil.rmtree(retired, ignore_errors=True)
    return output_dir
