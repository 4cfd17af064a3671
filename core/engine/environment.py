"""``environment.json``: what a run ran on, so its figures can be compared across machines.

A timing or a metric means little without the precision it ran in, the hardware, the
library versions and the exact code and data: this module gathers them once per run.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shopmtl.core.engine.hardware import Hardware, PrecisionChoice, cpu_threads_env
from shopmtl.core.runs.manifest import sha256

_LIBRARIES = ("torch", "transformers", "accelerate", "peft", "shopmtl")


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries a run's numbers depend on (None: not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def source_commit(package_dir: Path | None = None) -> dict[str, Any] | None:
    """The git commit of shopmtl's source when it runs from a checkout (an editable install), else None."""
    root = package_dir or Path(__file__).resolve().parents[2]  # core/engine/ -> the package root
    if not (root / ".git").exists():
        return None
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None  # no git binary, or not a readable repository: the versions still say a lot
    return {"commit": commit, "dirty": dirty}


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 -- fixed argv, git found on PATH as a user runs it
        ["git", "-C", str(root), *args],  # noqa: S607 -- git as the user has it on PATH
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout.strip()


def data_fingerprints(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Path, size and sha256 of each data file a run read (a folder or a missing path: no hash)."""
    records = []
    for path in map(Path, paths):
        if path.is_file():
            records.append(
                {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256(path)}
            )
        else:
            records.append({"path": str(path), "bytes": None, "sha256": None})
    return records


def environment_record(
    choice: PrecisionChoice,
    hardware: Hardware,
    data_paths: Iterable[str | Path] = (),
    processes: int = 1,
) -> dict[str, Any]:
    """Everything ``environment.json`` holds."""
    return {
        "precision": choice.precision,
        "precision_requested": choice.requested,
        "precision_reason": choice.reason,
        "precision_warnings": list(choice.warnings),
        "hardware": hardware.to_dict(),
        "processes": processes,
        "platform": platform.platform(),
        "thread_env": cpu_threads_env(),
        "versions": library_versions(),
        "source": source_commit(),
        "data": data_fingerprints(data_paths),
        "argv": sys.argv,
    }
