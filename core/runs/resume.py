"""``--resume`` continues a run with the run's own config, never a different one by accident.

A resumed run reads ``config.yaml`` from the run it continues. A config file or override
given with ``--resume`` may change only :data:`SAFE_ON_RESUME` -- how long to train, how
often to validate, logging and threads, which do not change what the steps already taken
computed; any other difference is refused with the list of differences (resuming with
another learning rate or other tasks would mix two runs in one). ``output_dir`` is where
the run is, not what it is, so it is never compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shopmtl.core.config import SAFE_ON_RESUME, Config, ConfigError
from shopmtl.core.runs import checkpoint, transaction

_NOT_COMPARED = ("output_dir",)


class _NotSet:
    """A key one side of a comparison lacks (``tasks.sales.weight`` where the other names no tasks)."""

    def __repr__(self) -> str:
        return "(not set)"


NOT_SET = _NotSet()


def resumed_from(output_dir: Path) -> Path | None:
    """The folder ``--resume`` continues: an interrupted run's working folder, else the finished run."""
    for folder in (transaction.work_dir(output_dir), output_dir):
        if (folder / checkpoint.LAST_CHECKPOINT / "trainer_state.json").is_file() and (folder / "config.yaml").is_file():
            return folder
    return None


def flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config data as ``section.key`` -> value."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat(value, name + "."))
        else:
            out[name] = value
    return out


def differences(saved: Config, given: Config) -> dict[str, tuple[Any, Any]]:
    """``key -> (saved value, given value)`` for every key that differs (``output_dir`` aside)."""
    old, new = flat(saved.model_dump(mode="json")), flat(given.model_dump(mode="json"))
    return {key: (old.get(key, NOT_SET), new.get(key, NOT_SET)) for key in sorted(old.keys() | new.keys())
            if key not in _NOT_COMPARED and old.get(key, NOT_SET) != new.get(key, NOT_SET)}


def _safe(key: str, safe: Iterable[str]) -> bool:
    return any(key == s or key.startswith(s + ".") for s in safe)


def resume_config(saved: Config, given: Config, source: Path) -> Config:
    """``saved`` with the safe changes of ``given`` applied; any other difference is a :class:`ConfigError`."""
    changed = differences(saved, given)
    unsafe = {key: pair for key, pair in changed.items() if not _safe(key, SAFE_ON_RESUME)}
    if unsafe:
        lines = "\n".join(f"  {key}: the run has {old!r}, given {new!r}" for key, (old, new) in unsafe.items())
        raise ConfigError(
            f"--resume: the config given differs from the run's own ({source / 'config.yaml'}) in what it trains:\n"
            f"{lines}\nResume without a config file (the run's own is used), change only keys safe to change on "
            f"resume ({', '.join(SAFE_ON_RESUME)}), or start a new run (--overwrite, or another --output-dir).")
    update = {key: new for key, (_, new) in changed.items() if new is not NOT_SET}
    data = saved.model_dump(mode="json")
    for key, value in update.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    data["output_dir"] = given.output_dir or saved.output_dir
    return Config.model_validate(data)
