"""What every reliability case does: set up a fault, run the command, check the outcome and that nothing was lost.

A case works in its own folder holding a copy of the session's toy run (``run/``) and
whatever its ``prepare`` adds (an input file, a corrupted weight, a stale folder). After
``prepare``, the bytes of every guarded path are hashed; the command runs through the
real ``shopmtl`` CLI in-process (``CliRunner``, the toy plugins as its plugin source);
then the exit code, the words of the message, the absence of a traceback, and the hashes
are checked, and ``then`` runs whatever else the case asserts.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import toy_tasks
from conftest import SMOKE_CONFIG, TOY_OVERRIDES

SMOKE = str(SMOKE_CONFIG)
TOY = (SMOKE, *TOY_OVERRIDES)  # the toy run's own config, as given on the command line
TINY = ("training.max_steps=4", "training.eval_every=2")  # a run that fails or finishes in a second


@dataclass(frozen=True)
class Case:
    """One fault and its expected outcome (a row of docs/reliability.md)."""

    id: str
    what: str  # the fault, in words (the table's first column)
    prepare: Callable[
        [Path], Sequence[str]
    ]  # sets up the fault in the case folder; returns the CLI arguments
    exit_code: int
    words: tuple[str, ...]  # each must appear in the output ("{ws}" stands for the case folder)
    guarded: tuple[str, ...] = (
        "run",
    )  # paths (relative to the case folder) whose bytes must not change
    absent: tuple[str, ...] = ()  # paths that must not exist afterwards (no half-written output)
    plugins: str = "toy"  # which plugin set the command runs with: toy, faulty or builtin
    then: Callable[[Path, Any], None] | None = (
        None  # further checks: (case folder, CliRunner result)
    )
    env: dict[str, str] = field(default_factory=dict)
    one_line: bool = False  # the error is a single line


def digest(root: Path, paths: Sequence[str]) -> dict[str, str]:
    """sha256 of every file under each of ``paths`` (relative to ``root``)."""
    out: dict[str, str] = {}
    for name in paths:
        target = root / name
        files = (
            [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
        )
        for path in files:
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# ----------------------------------------------------------------------------- ways to break a file


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def flip_bytes(path: Path, seed: int = 0, count: int = 16) -> None:
    """Overwrite ``count`` bytes inside the tensor data (the file's second half): the header stays valid."""
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for _ in range(count):
        at = rng.randrange(len(data) // 2, len(data))
        data[at] = (data[at] + 1 + rng.randrange(255)) % 256
    path.write_bytes(bytes(data))


def random_bytes(path: Path, seed: int = 0) -> None:
    """Replace the file with random bytes of the same size."""
    path.write_bytes(random.Random(seed).randbytes(path.stat().st_size))


def rows_file(ws: Path, name: str = "in.csv", **cells: object) -> Path:
    """A CSV of new rows for the toy tasks; ``cells`` overwrite values (``x_2=inf``: column x, frame row 2,
    which ``predict`` calls row 3: it counts data rows from 1)."""
    frame = toy_tasks._frame(6, 9, 0.1).drop(columns=["value", "flag"])
    for key, value in cells.items():
        column, _, row = key.rpartition("_")
        frame[column] = frame[column].astype(object)
        frame.loc[int(row), column] = value
    path = ws / name
    frame.to_csv(path, index=False)
    return path


def partial_of(ws: Path, name: str = "run") -> Path:
    """The working folder of ``ws/name`` (core/runs/transaction.py)."""
    return ws / f".{name}.shopmtl-partial"


def copy_run(source: Path, target: Path) -> None:
    shutil.copytree(source, target)


_PLUGIN_SETS: dict[str, Any] = {}


def plugin_set(name: str):
    """The plugins a case's command runs with: ``toy`` (tests/toy_tasks.py), ``faulty`` (toy + faulty_tasks.py)
    or ``builtin`` (shopmtl's own); no installed entry points. Loaded once each."""
    if name not in _PLUGIN_SETS:
        import toy_tasks
        from shopmtl.core.mtl.builtin import load_plugins
        from shopmtl.plugins.builtin import BUILTIN_PLUGINS

        from reliability import faulty_tasks

        chosen = {
            "toy": [("toy", toy_tasks)],
            "faulty": [("toy", toy_tasks), ("faulty", faulty_tasks)],
            "builtin": list(BUILTIN_PLUGINS),
        }[name]
        _PLUGIN_SETS[name] = load_plugins(chosen, only=[])
    return _PLUGIN_SETS[name]


def invoke(plugins: str, args: Sequence[str]):
    """Run ``shopmtl ARGS`` in-process with the named plugin set; the ``CliRunner`` result."""
    from click.testing import CliRunner
    from shopmtl.core.cli import cli
    from shopmtl.core.cli.common import PluginSource

    loaded = plugin_set(plugins)
    return CliRunner().invoke(
        cli, [str(a) for a in args], obj=PluginSource(load=lambda ctx, config=None: loaded)
    )
