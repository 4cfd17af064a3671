"""The run directory: claim it, record what the run is made of, and write its results.

One folder per run (``runs/<run_name>``)::

    config.yaml        the resolved configuration
    plugins.json       every loaded plugin with its version, and which one owns each task
    model/             the best model (see :mod:`~shopmtl.core.runs.checkpoint`)
    checkpoints/last/  the latest resumable checkpoint (see :mod:`~shopmtl.core.runs.state`)
    metrics.json       the best model's metrics, the baselines and the validation history
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from shopmtl.core.config import Config
from shopmtl.core.runs import checkpoint
from shopmtl.registry.pluginset import PluginSet


class RunDirectoryError(RuntimeError):
    """The output directory holds another run; the message says how to proceed."""


#: Locks this process holds on run directories, by path: a second claim from the same process
#: (a test, a notebook training again after an error) re-enters instead of blocking itself.
_HELD: dict[Path, FileLock] = {}


def lock_path(output_dir: Path) -> Path:
    """The lock file of a run directory: beside it, so the folder itself can be replaced whole."""
    return output_dir.parent / f".{output_dir.name}.shopmtl.lock"


def claim_output_dir(output_dir: Path) -> None:
    """Take the run directory's lock, or fail at once if another process trains into it.

    Two ``shopmtl train`` processes on one folder would both find it free and then
    overwrite each other's files. The lock (``filelock``: an OS lock, freed when
    the process ends, even by kill -9) makes the second one stop before it reads anything.
    """
    key = output_dir.resolve()
    key.parent.mkdir(parents=True, exist_ok=True)
    lock = _HELD.setdefault(key, FileLock(str(lock_path(key))))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunDirectoryError(
            f"{output_dir} is in use: another shopmtl process is training into it (lock {lock_path(key)}). "
            "Wait for it to finish, or train into another folder (--output-dir, or run_name=NAME)."
        ) from None


def release_output_dir(output_dir: Path) -> None:
    """Give back the lock :func:`claim_output_dir` took (the run is written)."""
    lock = _HELD.get(output_dir.resolve())
    if lock is not None and lock.is_locked:
        lock.release()


def plugins_record(plugins: PluginSet, tasks: Iterable[str]) -> dict[str, Any]:
    """``plugins.json``: every loaded plugin with its version, and which one owns each task."""
    return {
        "plugins": [r.to_dict() for r in plugins.reports],
        "tasks": {name: plugins.task_plugin.get(name) for name in tasks},
    }


ENVIRONMENT_FILE = "environment.json"


def write_run_record(output_dir: Path, config: Config, plugins: PluginSet, tasks: Iterable[str]) -> None:
    """``config.yaml`` and ``plugins.json``: what the run was made of, written before it trains."""
    checkpoint.write_yaml(output_dir / "config.yaml", config.model_dump(mode="json"))
    checkpoint.write_json(output_dir / "plugins.json", plugins_record(plugins, tasks))


def write_metrics(output_dir: Path, best_step: int, steps: int, by_task: dict[str, Any], baselines: dict[str, Any],
                  history: list[dict[str, Any]], timings: Mapping[str, float] | None = None) -> None:
    """``metrics.json``: the best model's metrics per task and split, the baselines, the validation
    history, and the seconds each phase of the run took (``timings``)."""
    checkpoint.write_json(output_dir / "metrics.json", {
        "best_step": best_step, "steps": steps, "tasks": by_task,
        "baselines": {"test": baselines}, "history": history,
        "timings": {k: round(v, 2) for k, v in (timings or {}).items()},
    })


def write_environment(output_dir: Path, record: Mapping[str, Any]) -> None:
    """``environment.json``: what the run ran on (see :mod:`shopmtl.core.engine.environment`)."""
    checkpoint.write_json(output_dir / ENVIRONMENT_FILE, dict(record))
