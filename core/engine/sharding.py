"""Training with sharded weights: FSDP (version 2) chosen in accelerate's config.

``accelerate launch --config_file examples/accelerate/fsdp.yaml -m shopmtl.core.cli train ...``
shards every weight, gradient and optimiser slot over the processes; the loop itself does
not change (accelerate's ``prepare``, ``backward``, ``clip_grad_norm_``). What changes is
everything that reads weights outside the model's own forward pass:

* evaluation and the weight checks run inside :func:`whole_weights`, which gathers each
  weight whole on every process for the block and shards it again after;
* ``model/`` is written from accelerate's full state dict, ``checkpoints/last`` through
  accelerate's ``save_state``, and ``--resume`` restores it after accelerate has sharded
  the model (:mod:`shopmtl.core.runs.sharded`; the trainer and validation pick that path).

Without FSDP every function here is a no-op or is not called, so one-process and DDP
runs behave exactly as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from shopmtl.core.config import Config, ConfigError
from torch.distributed.fsdp import FSDPModule


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
