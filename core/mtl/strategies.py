"""Pick a registered strategy by the name a config gives, and build the run's strategies from it.

Samplers, loss weightings, sharing kinds and gradient surgeries are registries that
plugins extend (``register_samplers`` and its siblings); shopmtl's own come from
:mod:`shopmtl.core.mtl.builtin` through the same hooks. Each builder here looks the
configured name up in a run's registry and wraps a factory's refusal in a
:class:`~shopmtl.core.config.ConfigError` that names the config key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from shopmtl.core.config import Config, ConfigError, SharingConfig, closest_key
from shopmtl.core.mtl import builtin
from shopmtl.registry.spec import GradientSurgery, GradientSurgeryFactory, SharingFactory

if TYPE_CHECKING:  # torch loads when a run builds its strategies, not when a sampler is imported
    from torch import nn

T = TypeVar("T")


def pick(registry: Mapping[str, T], name: str, key: str, noun: str) -> T:
    """``registry[name]``, or a ConfigError naming the config ``key``, the closest name and every registered one."""
    if name not in registry:
        hint = closest_key(name, registry)
        raise ConfigError(
            f"{key}: no {noun} named '{name}'"
            + (f"; did you mean '{hint}'?" if hint else "")
            + f" Registered: {', '.join(registry)}"
        )
    return registry[name]


def own(hook: Callable[[Callable[[str, T], None]], None]) -> dict[str, T]:
    """shopmtl's own entries of one ``register_*`` hook (for callers without a PluginSet)."""
    found: dict[str, T] = {}
    hook(found.__setitem__)
    return found


def make_weighting(
    config: Config, weightings: Mapping[str, Any], tasks: Sequence[str]
) -> nn.Module:
    """The configured loss weighting (``training.loss_weighting``), from the registered ones."""
    factory = pick(
        weightings, config.training.loss_weighting, "training.loss_weighting", "weighting"
    )
    weights = {t: config.tasks[t].weight if t in config.tasks else 1.0 for t in tasks}
    return factory(tasks, weights, dict(config.training.loss_weighting_options))


def build_sharing(
    config: SharingConfig,
    tasks: Sequence[str],
    width: int,
    kinds: Mapping[str, SharingFactory] | None = None,
) -> nn.Module | None:
    """The sharing module ``sharing.kind`` asks for (``None``: hard sharing).

    ``kinds`` defaults to shopmtl's own (hard, mmoe, ple); a run passes its
    :attr:`PluginSet.sharing_kinds`, which include plugins' kinds.
    """
    kinds = kinds if kinds is not None else own(builtin.register_sharing_kinds)
    factory = pick(kinds, config.kind, "sharing.kind", "sharing kind")
    options = {**config.model_dump(exclude={"kind", "options"}), **config.options}
    return factory(tasks, width, options)


def make_surgery(
    config: Config,
    surgeries: Mapping[str, GradientSurgeryFactory],
    model: nn.Module,
    tasks: Sequence[str],
) -> GradientSurgery | None:
    """The configured gradient surgery over the shared parameters (encoder, sharing), or ``None``."""
    name = config.training.gradient_surgery
    factory = pick(surgeries, name, "training.gradient_surgery", "gradient surgery")
    shared = [p for n, p in model.named_parameters() if n.startswith(("encoder.", "sharing."))]
    options = {
        **config.training.gradient_surgery_options,
        "seed": config.seed,
        "tasks": list(tasks),
        "gradient_accumulation_steps": config.training.gradient_accumulation_steps,
    }
    try:
        return factory(shared, options)
    except ValueError as error:  # the factory refuses this configuration: say which key
        raise ConfigError(f"training.gradient_surgery={name}: {error}") from error
