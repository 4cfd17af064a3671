"""Sharded weights (FSDP through accelerate's config), where no process holds every weight.

``accelerate launch --config_file examples/accelerate/fsdp.yaml -m shopmtl.core.cli train ...``
shards every weight, gradient and optimiser slot over the processes; the training loop does
not change (accelerate's ``prepare``, ``backward``, ``clip_grad_norm_``). What changes is
everything that reads weights outside the model's own forward pass: evaluation and the weight
checks run inside :func:`whole_weights`, and checkpoints are written as below. Without FSDP
every function here is a no-op or is not called.

A one-process or DDP run keeps a whole copy of the model and of the optimiser state on
every process, so the main process writes ``checkpoints/last`` alone from them
(:mod:`shopmtl.core.runs.state`). Under FSDP each process holds only its slice of each
weight and of the optimiser state, so:

* ``checkpoints/last`` is written by **every** process through accelerate's
  ``save_state`` (model and optimiser shards as ``torch.distributed.checkpoint`` files,
  one set per process, plus accelerate's RNG states) into ``accelerate/``, beside the
  trainer's own ``trainer_state.json`` (step, history, sampler cursor, LR schedule).
  ``--resume`` reads it back with ``load_state`` after accelerate has sharded the model
  again, on the same number of processes. The run folder must be on a filesystem every
  machine sees (a cluster's shared disk), as each process writes its own shard there.
* ``model/`` stays what every other command reads: safetensors files of whole weights,
  from accelerate's full state dict (gathered to the main process, on CPU).

A checkpoint folder appears whole or not at all: the processes write into one staging
sibling that the main process renames into place once every process has finished.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from safetensors.torch import load_file, save_file
from shopmtl.core.config import Config, ConfigError
from shopmtl.core.data.features import FeatureState
from shopmtl.core.files import atomic_dir
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.mtl.sampler import TaskSampler
from shopmtl.core.runs import checkpoint, manifest
from shopmtl.core.runs.state import TrainState
from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
from torch.distributed.fsdp import FSDPModule

ACCELERATE_STATE = "accelerate"  # accelerate's save_state folder inside a sharded checkpoint
TRAINER_STATE = "trainer_state.json"
_PARTS = (
    "weighting",
    "sharing",
)  # optional modules saved as <part>.safetensors, as write_model_files does


def is_sharded_checkpoint(folder: Path) -> bool:
    """True for a checkpoint a sharded run wrote (it holds accelerate's state, not whole weights)."""
    return (folder / ACCELERATE_STATE).is_dir()


def complete_optimizer_state(optimizer: torch.optim.Optimizer) -> int:
    """Give every parameter that has no optimiser state yet the state it would start with; returns how many.

    A parameter gets AdamW state only at its first gradient (the heads of tasks not drawn
    yet, the backbone's unused pooler never), but ``torch.distributed.checkpoint`` loads
    an optimiser by first creating state for *every* parameter and then demanding each of
    those entries from the checkpoint. So before a save the missing entries are added as
    AdamW's first step makes them -- zero moments, step 0 -- which changes no update:
    AdamW skips parameters without a gradient and starts a zero state exactly like a new one.
    """
    optimizer = getattr(
        optimizer, "optimizer", optimizer
    )  # accelerate's wrapper around the torch optimiser
    added = 0
    for group in optimizer.param_groups:
        template = next(
            (optimizer.state[p] for p in group["params"] if optimizer.state.get(p)), None
        )
        if template is None:
            continue
        for param in group["params"]:
            if not optimizer.state.get(param):
                optimizer.state[param] = {
                    key: torch.zeros_like(value)
                    if value.ndim == 0  # the step count
                    else torch.zeros_like(param, dtype=value.dtype)  # a moment
                    for key, value in template.items()
                }
                added += 1
    return added


def save_sharded_checkpoint(
    folder: Path,
    accelerator: Accelerator,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    sampler: TaskSampler,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> None:
    """Every process writes its shards of model and optimiser; the main process adds ``trainer_state.json``.

    Call on every process (it is collective); ``folder`` replaces the previous checkpoint
    only once every shard is written.
    """
    complete_optimizer_state(optimizer)
    staging = folder.with_name(f".{folder.name}.sharded")
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)  # what an interrupted save left
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging / ACCELERATE_STATE), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        checkpoint.write_json(
            staging / TRAINER_STATE,
            {**asdict(state), "sampler": sampler.state_dict(), "scheduler": scheduler.state_dict()},
        )
        manifest.write_manifest(staging)  # every process's shards are written: list them all
        retired = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        if folder.exists():
            folder.replace(retired)
        staging.replace(folder)
        shutil.rmtree(retired, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_sharded_checkpoint(
    folder: Path,
    accelerator: Accelerator,
    sampler: TaskSampler,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainState:
    """Restore what :func:`save_sharded_checkpoint` wrote into the prepared (sharded) run; returns the trainer's state.

    Call on every process, after accelerate's ``prepare``.
    """
    if not is_sharded_checkpoint(folder):
        raise ValueError(
            f"{folder} was written by a run that was not sharded (no {ACCELERATE_STATE}/ inside): "
            "resume it with the accelerate config it was trained with, or train again without --resume"
        )
    # torch.distributed.checkpoint's metadata and accelerate's RNG states are pickles:
    # nothing is read before every file is the one the checkpoint was written with.
    manifest.verify(folder)
    accelerator.load_state(str(folder / ACCELERATE_STATE))
    saved = checkpoint.read_json(folder / TRAINER_STATE)
    sampler.load_state_dict(saved["sampler"])
    scheduler.load_state_dict(saved["scheduler"])
    return TrainState(**{name: saved[name] for name in TrainState.__dataclass_fields__})


def save_full_model(
    target: Path,
    accelerator: Accelerator,
    model: MultiTaskModel,
    features: Mapping[str, FeatureState],
    tokenizer: Any,
) -> None:
    """``model`` (sharded) as a model folder of whole weights, written by the main process.

    Call on every process: accelerate gathers the full state dict (to the main process, on CPU).
    """
    full = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        write_full_weights(target, full, model, features, tokenizer)


def split_state(
    state: Mapping[str, torch.Tensor], model: MultiTaskModel
) -> dict[str, dict[str, torch.Tensor]]:
    """A full state dict of ``model`` cut into the model folder's files (``encoder``, ``heads/<task>``, ...).

    Raises on a key that belongs to none of them, so no weight is ever dropped silently.
    """
    files: dict[str, dict[str, torch.Tensor]] = {}
    prefixes = {
        "encoder.": "encoder",
        **{f"heads.{name}.": f"heads/{name}" for name in model.heads},
    }
    prefixes.update({f"{part}.": part for part in _PARTS if getattr(model, part) is not None})
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is None:
            raise ValueError(
                f"weight '{key}' belongs to no file of a model folder (encoder, heads, {', '.join(_PARTS)})"
            )
        files.setdefault(prefixes[prefix], {})[key[len(prefix) :]] = (
            value.detach().cpu().contiguous()
        )
    return files


def write_full_weights(
    target: Path,
    state: Mapping[str, torch.Tensor],
    model: MultiTaskModel,
    features: Mapping[str, FeatureState],
    tokenizer: Any,
) -> None:
    """A model folder (as :func:`~shopmtl.core.runs.checkpoint.save_model_dir` writes it) from a full state dict."""
    with atomic_dir(target) as staging:
        (staging / "heads").mkdir()
        for name, tensors in split_state(state, model).items():
            save_file(tensors, str(staging / f"{name}.safetensors"))
        checkpoint.write_features(staging, features)
        model.encoder.backbone.config.save_pretrained(staging / "backbone")
        tokenizer.save_pretrained(staging / "backbone")
        manifest.write_manifest(staging)


def read_full_weights(folder: Path, model: MultiTaskModel) -> dict[str, torch.Tensor]:
    """A model folder's weights as one state dict with ``model``'s keys (the inverse of :func:`split_state`)."""
    state = {f"encoder.{k}": v for k, v in load_file(str(folder / "encoder.safetensors")).items()}
    for name in model.heads:
        state.update(
            {
                f"heads.{name}.{k}": v
                for k, v in load_file(str(folder / "heads" / f"{name}.safetensors")).items()
            }
        )
    for part in _PARTS:
        path = folder / f"{part}.safetensors"
        if getattr(model, part) is not None and path.is_file():
            state.update({f"{part}.{k}": v for k, v in load_file(str(path)).items()})
    return state


def load_full_weights(folder: Path, model: MultiTaskModel) -> None:
    """Load a model folder into a sharded ``model``: each process keeps its own slice of every weight.

    Every process reads the files (they are on the run's shared disk) and calls this together.
    """
    set_model_state_dict(
        model, read_full_weights(folder, model), options=StateDictOptions(full_state_dict=True)
    )


def is_sharded(accelerator: Accelerator) -> bool:
    """True when accelerate shards the weights (FSDP) instead of copying them to every process."""
    return accelerator.distributed_type == DistributedType.FSDP


def check_sharding(accelerator: Accelerator, config: Config) -> None:
    """Refuse, with the fix, what a sharded run cannot do; nothing for other runs."""
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        raise ConfigError(
            "shopmtl shards weights with FSDP, not DeepSpeed: launch with an FSDP accelerate config "
            "(examples/accelerate/fsdp.yaml)"
        )
    if not is_sharded(accelerator):
        return
    version = getattr(accelerator.state.fsdp_plugin, "fsdp_version", 1)
    problems = []
    if version != 2:
        problems.append(
            f"the accelerate config asks for FSDP version {version}; set fsdp_version: 2 in fsdp_config"
        )
    if config.training.gradient_surgery != "none":
        problems.append(
            f"training.gradient_surgery={config.training.gradient_surgery} needs each task's whole "
            "gradient on every process; set it to none"
        )
    if config.encoder.freeze:
        problems.append(
            "encoder.freeze=true caches the encoder's vectors outside the model's forward pass; "
            "train without FSDP (a frozen encoder has no optimiser state to shard)"
        )
    if problems:
        raise ConfigError(
            "this run is sharded (FSDP in the accelerate config), but:\n  " + "\n  ".join(problems)
        )


@contextlib.contextmanager
def whole_weights(accelerator: Accelerator, model: torch.nn.Module) -> Iterator[None]:
    """Every weight of ``model`` whole on every process for the block; sharded again after.

    Evaluation calls the encoder and the heads one by one, outside the model's forward
    pass where FSDP gathers them, and each process scores a different number of rows, so
    the weights are gathered once, up front, by every process together; forward passes
    in the block then keep them whole instead of gathering again. Read the weights in the
    block through ``named_parameters()``: FSDP's ``state_dict()`` hands out the shards again.
    """
    if not is_sharded(accelerator):
        yield
        return
    units = [m for m in model.modules() if isinstance(m, FSDPModule)]
    reshard = bool(getattr(accelerator.state.fsdp_plugin, "reshard_after_forward", True))
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(reshard, recurse=False)
