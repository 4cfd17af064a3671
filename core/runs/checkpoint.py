"""Run directories and checkpoints: safetensors weights, JSON and YAML beside them.

Layout of a model folder (``<run>/model`` holds the best model; ``<run>/checkpoints/last``
adds the optimiser and trainer state needed by ``--resume``)::

    encoder.safetensors        the shared encoder (LoRA adapters included)
    heads/<task>.safetensors   one file per task, so a head can be dropped or swapped
    weighting.safetensors      a learnable loss weighting's parameters, if any
    sharing.safetensors        MMoE/PLE experts and gates, if the run used them
    features.json              per task: standardisation constants, vocabularies, the prior's name
    priors/<task>.safetensors  a task's fitted classical prior (tasks.<name>.prior), if any: its
                               arrays, with its JSON in the header; never a pickle
    manifest.json              every file above with its sha256 (see :mod:`~shopmtl.core.runs.manifest`)
    calibration.json           per task: what `calibrate` fitted on val (thresholds), if any
    backbone/                  the encoder's transformers config and tokenizer files

Every folder is written to a temporary sibling and renamed into place, so an
interrupted write never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, load_model, save_file, save_model

from shopmtl.core.config import Config, validate_config
from shopmtl.core.data.features import FeatureState
from shopmtl.core.data.priorfile import (
    LEGACY_SUFFIX,
    PRIORS_DIR,
    PickledPriorError,
    load_prior,
    prior_path,
    save_prior,
)
from shopmtl.core.files import atomic_dir, write_text_atomic
from shopmtl.core.model.encoder import check_no_remote_code
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.runs import manifest
from shopmtl.registry.spec import TaskSpec
from shopmtl.registry.validation import NAME_PATTERN

MODEL_DIR = "model"
CALIBRATION = "calibration.json"  # what tasks' `calibrate` fitted on val, in the model folder
LAST_CHECKPOINT = Path("checkpoints") / "last"


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    return manifest.read_json_file(path)  # a truncated file is an error naming it


def write_yaml(path: Path, data: Any) -> None:
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def save_model_dir(
    target: Path,
    model: MultiTaskModel,
    features: Mapping[str, FeatureState],
    tokenizer: Any,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write encoder, heads, feature states and backbone files into ``target`` atomically.

    ``extra`` maps file names to JSON-able data written beside them (trainer state).
    """
    with atomic_dir(target) as staging:
        write_model_files(staging, model, features, tokenizer)
        for name, data in (extra or {}).items():
            write_json(staging / name, data)
        manifest.write_manifest(staging)


def write_model_files(folder: Path, model: MultiTaskModel, features: Mapping[str, FeatureState], tokenizer: Any) -> None:
    """The files of a model folder, written into an existing (staging) folder."""
    save_model(model.encoder, str(folder / "encoder.safetensors"))
    (folder / "heads").mkdir()
    for name, head in model.heads.items():
        save_model(head, str(folder / "heads" / f"{name}.safetensors"))
    for part in ("weighting", "sharing"):
        module = getattr(model, part)
        if module is not None and any(True for _ in module.parameters()):
            save_model(module, str(folder / f"{part}.safetensors"))
    write_features(folder, features)
    model.encoder.backbone.config.save_pretrained(folder / "backbone")  # peft forwards .config
    tokenizer.save_pretrained(folder / "backbone")


def write_features(folder: Path, features: Mapping[str, FeatureState]) -> None:
    """``features.json`` and each task's fitted prior (``priors/<task>.safetensors``) into ``folder``."""
    write_json(folder / "features.json", {name: state.to_dict() for name, state in features.items()})
    for name, state in features.items():
        if state.prior is not None:
            save_prior(folder, name, state.prior)


def source_model_dir(run_dir: str | Path) -> Path:
    """The model folder of a finished run, after the whole run verified against its manifest.

    Every command that opens a run comes through here: a missing manifest, a missing,
    changed or unlisted file is refused (see :mod:`~shopmtl.core.runs.manifest`).
    """
    folder = Path(run_dir) / MODEL_DIR
    for needed in (folder / "encoder.safetensors", Path(run_dir) / "config.yaml"):
        if not needed.is_file():
            raise FileNotFoundError(f"{run_dir} is not a finished shopmtl run: {needed} is missing "
                                    "(train it, or restore the file from a copy of the run)")
    manifest.verify_run(Path(run_dir))
    check_contents(Path(run_dir))
    return folder


def check_contents(run_dir: Path) -> None:
    """Refuse a run that names a task with a name that is not one, or whose backbone names code.

    Every task name read from a run becomes part of a file name when it is used; a name
    such as ``../../x`` is refused here, when the run is opened, whichever command opens
    it. So is a backbone config with ``auto_map`` (code transformers would import).
    """
    for folder in (run_dir / MODEL_DIR, run_dir / LAST_CHECKPOINT):
        check_no_remote_code(folder / "backbone")
        for name in ("features.json", CALIBRATION):
            if (folder / name).is_file():
                _by_task(read_json(folder / name), folder / name)
        for path in (folder / "heads").glob("*.safetensors"):
            manifest.task_name(path.stem, path)
    for name, key in (("plugins.json", "tasks"), ("metrics.json", "tasks")):
        data = read_json(run_dir / name) if (run_dir / name).is_file() else {}
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            _by_task(data[key], run_dir / name)


def read_run_config(run_dir: Path) -> Config:
    """A run's resolved ``config.yaml``, validated."""
    path = run_dir / "config.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise manifest.CorruptRunError(f"{path} is truncated or not YAML ({str(error).splitlines()[0]}): "
                                       "restore it from a copy of the run") from None
    if not isinstance(raw, dict):
        raise manifest.CorruptRunError(f"{path} is empty or not a config: restore it from a copy of the run")
    return validate_config(raw, str(path))


def saved_adapters(folder: Path) -> list[str]:
    """Names of the LoRA adapters in a model folder's encoder (``default`` for a shared one)."""
    from safetensors import safe_open

    names: list[str] = []
    path = folder / "encoder.safetensors"
    with manifest.loading(path), safe_open(str(path), framework="pt") as weights:
        for key in weights.keys():
            match = _ADAPTER_KEY.search(key)
            if match and match.group(1) not in names:
                names.append(match.group(1))
    return names


_ADAPTER_KEY = re.compile(r"\.lora_A\.([^.]+)\.weight$")


def load_encoder(folder: Path, encoder: torch.nn.Module) -> None:
    """Load only the encoder weights of a model folder."""
    _load_into(encoder, folder / "encoder.safetensors")


def _load_into(module: torch.nn.Module, path: Path, strict: bool = True) -> None:
    """``safetensors.torch.load_model``, failing with one line that names ``path``."""
    with manifest.loading(path):
        load_model(module, str(path), strict=strict)


def load_matching_heads(folder: Path, model: MultiTaskModel) -> list[str]:
    """Load the source's heads for tasks this model also has, where the shapes agree."""
    reused = []
    for name, head in model.heads.items():
        path = folder / "heads" / f"{name}.safetensors"
        if not path.is_file():
            continue
        with manifest.loading(path):
            saved = load_file(str(path))
        current = head.state_dict()
        if saved.keys() == current.keys() and all(saved[k].shape == current[k].shape for k in saved):
            head.load_state_dict(saved)
            reused.append(name)
    return reused


def carry_heads(
    source: Path,
    target: Path,
    specs: Mapping[str, TaskSpec] | None = None,
    *,
    allow_pickle: bool = False,
) -> list[str]:
    """Copy the source's heads (and feature states and priors) for tasks ``target`` lacks.

    A prior is copied as its file; one the source holds only as an old pickle is opened
    (``allow_pickle``, with its task in ``specs``) and written in the arrays-and-JSON format,
    so the new run holds no pickle. Only from a verified source (never under
    ``--trust-unverified``): ``target``'s manifest then lists the copies as this run's own files.
    """
    if manifest.trusting():
        raise manifest.UnverifiedRunError(f"{source} was opened unverified: its heads are not carried over")
    features = read_json(target / "features.json")
    source_features = read_json(source / "features.json")
    carried = []
    for path in sorted((source / "heads").glob("*.safetensors")):
        name = path.stem
        if name in features or name not in source_features or not NAME_PATTERN.fullmatch(name):
            continue
        shutil.copyfile(manifest.inside(source, path), target / "heads" / path.name)
        prior_name = source_features[name].get("prior")
        if prior_name:
            _carry_prior(source, target, name, prior_name, specs or {}, allow_pickle)
        features[name] = source_features[name]
        carried.append(name)
    if carried:
        write_json(target / "features.json", features)
        manifest.write_manifest(target)  # the carried heads are part of this model now
    return carried


def _carry_prior(
    source: Path, target: Path, task: str, name: str, specs: Mapping[str, TaskSpec], allow_pickle: bool
) -> None:
    (target / PRIORS_DIR).mkdir(exist_ok=True)
    saved = prior_path(source, task)
    if saved.is_file():
        shutil.copyfile(saved, prior_path(target, task))
        return
    if not allow_pickle:
        refuse_pickled_priors(source, [task])
    if task not in specs:
        raise manifest.CorruptRunError(
            f"{saved} is missing: the source run's features.json names prior {name!r} for task "
            f"'{task}', and no installed plugin provides that task; install it, or restore the file"
        )
    save_prior(target, task, load_prior(source, task, specs[task], name, allow_pickle=allow_pickle))


def legacy_priors(folder: Path, tasks: Iterable[str] | None = None) -> list[Path]:
    """The old pickled prior files (``priors/<task>.joblib``) a model folder would need for
    ``tasks`` (default: every task with a prior), where no arrays-and-JSON file replaces them."""
    found = []
    for name, state in read_json(folder / "features.json").items():
        if (tasks is None or name in tasks) and isinstance(state, dict) and state.get("prior"):
            if not prior_path(folder, name).is_file() and prior_path(folder, name, LEGACY_SUFFIX).is_file():
                found.append(prior_path(folder, name, LEGACY_SUFFIX))
    return found


def refuse_pickled_priors(folder: Path, tasks: Iterable[str] | None = None) -> None:
    """One line naming the first old pickled prior ``tasks`` would need (see :func:`legacy_priors`)."""
    for path in legacy_priors(folder, tasks):
        raise PickledPriorError(
            f"{path} is a pickled prior from an older shopmtl and opening it would run code "
            "from the file: train the run again, or pass --allow-pickle if you trust its source"
        )


def rewrite_priors(folder: Path, features: Mapping[str, FeatureState]) -> None:
    """Replace ``folder``'s priors with the loaded ``features``' ones, as arrays and JSON (a copy
    of a run opened with ``--allow-pickle`` then holds no pickle); re-list a manifest's files."""
    shutil.rmtree(folder / PRIORS_DIR, ignore_errors=True)
    for name, state in features.items():
        if state.prior is not None:
            save_prior(folder, name, state.prior)
    if (folder / manifest.MANIFEST).is_file():
        manifest.write_manifest(folder)


def load_weights(folder: Path, model: MultiTaskModel, tasks: list[str] | None = None) -> None:
    """Load encoder and head weights from a model folder into ``model`` (strict)."""
    _load_into(model.encoder, folder / "encoder.safetensors")
    for name in tasks if tasks is not None else list(model.heads):
        path = folder / "heads" / f"{name}.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the run has no trained head for task '{name}'")
        _load_into(model.heads[name], path)
    for part in ("weighting", "sharing"):
        module, path = getattr(model, part), folder / f"{part}.safetensors"
        if module is not None and path.is_file():
            _load_into(module, path, strict=False)  # a dropped head leaves its gate unused


def read_calibration(folder: Path, tasks: list[str] | None = None) -> dict[str, Any]:
    """Per-task calibration saved with a model (``{}`` when none was fitted), for ``tasks`` (default all)."""
    path = folder / CALIBRATION
    data = _by_task(read_json(path), path) if path.is_file() else {}
    return {name: value for name, value in data.items() if tasks is None or name in tasks}


def feature_tasks(folder: Path) -> list[str]:
    """The task names ``features.json`` lists, each checked to be a task name (they name files)."""
    path = folder / "features.json"
    data = read_json(path)
    if not isinstance(data, dict):
        raise manifest.CorruptRunError(f"{path} is not a mapping of tasks: restore it from a copy of the run")
    bad = [name for name in data if not NAME_PATTERN.fullmatch(name)]
    if bad:
        raise manifest.CorruptRunError(
            f"{path} names {bad[0]!r}, which is not a task name (lower-case letters, digits and _): "
            "the file was altered; restore it from a copy of the run"
        )
    return list(data)


def read_features(
    folder: Path, specs: Mapping[str, TaskSpec], *, allow_pickle: bool = False
) -> dict[str, FeatureState]:
    """The feature states saved for the tasks of ``specs``, each with its fitted prior.

    Only these tasks' priors are opened; ``allow_pickle`` lets an old pickled prior be
    unpickled (:func:`shopmtl.core.data.priorfile.load_prior`).
    """
    data = read_json(folder / "features.json")
    states = {}
    for name, spec in specs.items():
        saved = data.get(name) if isinstance(data, dict) else None
        if not isinstance(saved, dict):
            raise manifest.CorruptRunError(
                f"{folder / 'features.json'} has no feature state for task '{name}': restore it from a copy of the run"
            )
        prior = saved.get("prior")
        fitted = load_prior(folder, name, spec, prior, allow_pickle=allow_pickle) if prior else None
        states[name] = FeatureState.from_dict(saved, fitted)
    return states


def _by_task(data: Any, path: Path) -> dict[str, Any]:
    """A JSON object keyed by task, every key checked to be a task name (it becomes a file name)."""
    if not isinstance(data, dict):
        raise manifest.CorruptRunError(f"{path} is not a JSON object by task: restore it from a copy of the run")
    for name in data:
        manifest.task_name(name, path)
    return data


def save_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Optimiser state as safetensors (tensors) plus JSON (hyper-parameters, scalars)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    save_file(tensors, str(path.with_suffix(".safetensors")))
    write_json(path.with_suffix(".json"), {"param_groups": state["param_groups"], "scalars": scalars})


def load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Restore what :func:`save_optimizer` wrote."""
    with manifest.loading(path.with_suffix(".safetensors")):
        tensors = load_file(str(path.with_suffix(".safetensors")))
    meta = read_json(path.with_suffix(".json"))
    slots: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        index, _, name = key.partition(".")
        slots.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
