"""A fitted prior on disk: ``<model>/priors/<task>.safetensors``, arrays plus JSON, never a pickle.

The file holds the :class:`~shopmtl.registry.spec.PriorState` a prior's ``state`` returned:
its arrays as safetensors tensors, and its JSON in the file's header (metadata key
:data:`HEADER_KEY`) beside the prior's name and the format version. Reading it parses JSON
and copies numbers; the prior's ``from_state`` rebuilds the model from them. One file per
task, listed in the model folder's manifest like the weights.

Runs written before this format saved ``priors/<task>.joblib``, a pickle: opening one runs
code from the file. Such a run is refused with one line naming the file, unless the caller
opts in (``--allow-pickle``; :mod:`shopmtl.core.data.legacy_prior`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopmtl.core.data.priors import FittedPrior, PriorError, chosen_prior
from shopmtl.registry.spec import PriorState, TaskSpec
from shopmtl.registry.validation import NAME_PATTERN

#: Where a model folder keeps each task's fitted prior.
PRIORS_DIR = "priors"
SUFFIX = ".safetensors"
#: What runs before hook API 1.5 wrote: a joblib pickle, opened only with --allow-pickle.
LEGACY_SUFFIX = ".joblib"
#: The safetensors metadata key holding the prior's JSON.
HEADER_KEY = "shopmtl.prior"
FORMAT = 1


class PickledPriorError(PriorError):
    """A run's prior is a pickle from an older shopmtl, and the caller did not opt in to open it."""


def prior_path(folder: Path, task: Any, suffix: str = SUFFIX) -> Path:
    """``<folder>/priors/<task><suffix>``, refused unless ``task`` is a task name and the path
    stays inside ``folder`` once links are resolved (names come from a run's JSON files)."""
    if not isinstance(task, str) or not NAME_PATTERN.fullmatch(task):
        raise PriorError(
            f"{folder / 'features.json'} names a task {task!r}, which is not a task name "
            "(lower-case letters, digits and _): the file was altered; restore the run from a copy"
        )
    path = folder / PRIORS_DIR / f"{task}{suffix}"
    resolved, root = path.resolve(), folder.resolve()
    if not resolved.is_relative_to(root):
        raise PriorError(
            f"{path} leads to {resolved}, outside the model folder {root}: refused; "
            "replace the link with the run's own file"
        )
    return path


def save_prior(folder: Path, task: str, fitted: FittedPrior) -> None:
    """Write ``fitted``'s state as ``<folder>/priors/<task>.safetensors`` (the manifest then lists it)."""
    from safetensors.numpy import save_file

    if fitted.model is not None and fitted.state is None:
        raise PriorError(
            f"task '{task}': prior {fitted.name!r} has no state to save (it was opened from a "
            "pickle and its plugin's Prior.state cannot describe it); train the run again"
        )
    state = fitted.state or PriorState()
    header = {
        "format": FORMAT,
        "task": task,
        "prior": fitted.name,
        "fitted": fitted.model is not None,
        "meta": state.meta,
    }
    path = prior_path(folder, task)
    path.parent.mkdir(exist_ok=True)
    save_file(dict(state.arrays), str(path), metadata={HEADER_KEY: json.dumps(header)})


def load_prior(
    folder: Path, task: str, spec: TaskSpec, name: str, *, allow_pickle: bool = False
) -> FittedPrior:
    """The prior ``name`` of ``task`` that :func:`save_prior` wrote, rebuilt by its ``from_state``.

    A run with only the old pickle (``<task>.joblib``) is refused, naming the file, unless
    ``allow_pickle`` (which runs code from that file: trusted runs only).
    """
    path = prior_path(folder, task)
    if not path.is_file():
        legacy = prior_path(folder, task, LEGACY_SUFFIX)
        if legacy.is_file():
            if not allow_pickle:
                raise PickledPriorError(
                    f"{legacy} is a pickled prior from an older shopmtl and opening it would run code "
                    "from the file: train the run again, or pass --allow-pickle if you trust its source"
                )
            from shopmtl.core.data.legacy_prior import load_pickled_prior

            return load_pickled_prior(legacy, task, spec, name)
        raise PriorError(
            f"{path} is missing: the run's features.json names prior {name!r} for task '{task}'; "
            "restore the file from a copy of the run, or train it again"
        )
    header, state = _read(path)
    if header.get("prior") != name or header.get("task") != task:
        raise PriorError(
            f"{path} holds prior {header.get('prior')!r} of task {header.get('task')!r}, but the run's "
            f"features.json names prior {name!r} of task '{task}': restore the run from a copy"
        )
    if not header.get("fitted"):
        return FittedPrior(name, None)
    prior = chosen_prior(spec, name)
    if prior.from_state is None:
        raise PriorError(
            f"{path}: prior {name!r} of task '{task}' declares no Prior.from_state in the installed "
            "plugin; install the plugin version that trained the run"
        )
    try:
        model = prior.from_state(state)
    except Exception as error:  # a plugin's code, reading what its own state wrote
        raise PriorError(
            f"{path}: prior {name!r} of task '{task}' cannot be rebuilt from the file "
            f"({type(error).__name__}: {error}); install the plugin version that trained the run"
        ) from None
    return FittedPrior(name, model, state)


def _read(path: Path) -> tuple[dict[str, Any], PriorState]:
    """The file's JSON header and its state, or one line naming the file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            arrays = {key: handle.get_tensor(key) for key in handle.keys()}
        header = json.loads(metadata[HEADER_KEY])
    except Exception as error:  # safetensors' and json's errors, reported in words
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise PriorError(
            f"{path} is not a shopmtl prior file, truncated or corrupt ({type(error).__name__}: {first}); "
            "restore it from a copy of the run, or train the run again"
        ) from None
    if (
        not isinstance(header, dict)
        or header.get("format") != FORMAT
        or not isinstance(header.get("meta"), dict)
    ):
        raise PriorError(
            f"{path} has no shopmtl prior header of format {FORMAT}; restore it from a copy of the run"
        )
    return header, PriorState(arrays, header["meta"])
