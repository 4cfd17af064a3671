"""One way to put a run's model together, for training and for a finished run alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from shopmtl.core.config import Config
from shopmtl.core.model.encoder import TextEncoder
from shopmtl.core.model.model import MultiTaskModel, build_model
from shopmtl.core.mtl.strategies import build_sharing
from shopmtl.registry.spec import HeadSpec, SharingFactory, TaskSpec


def assemble_model(
    config: Config,
    encoder: TextEncoder,
    specs: Mapping[str, TaskSpec],
    head_spec: Callable[[str, int], HeadSpec],
    sharing_kinds: Mapping[str, SharingFactory] | None = None,
    weighting: nn.Module | None = None,
) -> MultiTaskModel:
    """The multi-task model of a run: ``encoder``, the configured sharing, and one head per task.

    :param specs: the tasks, as configured by their settings (heads and losses as trained).
    :param head_spec: ``(task, encoder width) -> HeadSpec``: what each task's head reads.
    :param sharing_kinds: the registered sharing kinds (default: shopmtl's own).
    :param weighting: the loss weighting (training only; a loaded run needs none).
    """
    width = encoder.hidden_size
    sharing = build_sharing(config.sharing, list(specs), width, sharing_kinds)
    return build_model(encoder, specs, {name: head_spec(name, width) for name in specs}, weighting, sharing)
