"""shopmtl's own strategies -- samplers, loss weightings, sharing kinds, gradient surgeries -- registered
through the public hooks.

Whoever loads plugins for the engine registers this module first, as plugin ``shopmtl``
(:func:`with_strategies`), the way pytest loads its own built-in plugins: a third-party
sampler or weighting is registered exactly like these. Each family's implementation lives
in its own module beside this one: ``sampler``, ``weightings``, ``sharing``, ``surgery``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from shopmtl.registry import manager
from shopmtl.registry.hookspecs import PROJECT_NAME, hookimpl
from shopmtl.registry.pluginset import PluginSet


def _normalised(weights: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    weights = weights / weights.sum()
    return dict(zip(names, weights.tolist()))


def proportional(sizes: Mapping[str, int], options: Mapping[str, Any]) -> dict[str, float]:
    """p ~ n: every training row is equally likely; big tasks dominate."""
    return _normalised(np.array([max(1, n) for n in sizes.values()], dtype=np.float64), list(sizes))


def temperature(sizes: Mapping[str, int], options: Mapping[str, Any]) -> dict[str, float]:
    """p ~ n^(1/T) (``options.temperature``, default 2): small tasks are not starved."""
    t = float(options.get("temperature", 2.0))
    if t <= 0:
        raise ValueError(f"sampler temperature must be > 0, got {t}")
    sizes_ = np.array([max(1, n) for n in sizes.values()], dtype=np.float64)
    return _normalised(sizes_ ** (1.0 / t), list(sizes))


def uniform(sizes: Mapping[str, int], options: Mapping[str, Any]) -> dict[str, float]:
    """Every task equally often."""
    return _normalised(np.ones(len(sizes)), list(sizes))


def static(tasks: Sequence[str], weights: Mapping[str, float], options: Mapping[str, Any]):
    """Each task's loss times its configured weight (``tasks.<name>.weight``)."""
    from shopmtl.core.mtl.weightings import StaticWeighting  # torch loads only when training

    return StaticWeighting(tasks, weights, options)


def uncertainty(tasks: Sequence[str], weights: Mapping[str, float], options: Mapping[str, Any]):
    """Learned per-task uncertainty (Kendall et al., 2018); see :class:`UncertaintyWeighting`."""
    from shopmtl.core.mtl.weightings import UncertaintyWeighting

    return UncertaintyWeighting(tasks, weights, options)


def hard(tasks: Sequence[str], width: int, options: Mapping[str, Any]) -> None:
    """Hard sharing: every head reads the pooled vector itself."""
    return None


def mmoe(tasks: Sequence[str], width: int, options: Mapping[str, Any]):
    """MMoE gates over shared experts; see :mod:`shopmtl.core.mtl.sharing`."""
    from shopmtl.core.mtl import sharing  # torch loads only when training

    return sharing.mmoe(tasks, width, options)


def ple(tasks: Sequence[str], width: int, options: Mapping[str, Any]):
    """PLE: MMoE plus experts private to each task; see :mod:`shopmtl.core.mtl.sharing`."""
    from shopmtl.core.mtl import sharing

    return sharing.ple(tasks, width, options)


def no_surgery(shared: Sequence[Any], options: Mapping[str, Any]) -> None:
    """Plain summed gradients."""
    return None


def pcgrad(shared: Sequence[Any], options: Mapping[str, Any]):
    """PCGrad (Yu et al., 2020); see :mod:`shopmtl.core.mtl.surgery`."""
    from shopmtl.core.mtl import surgery

    return surgery.pcgrad(shared, options)


@hookimpl
def register_samplers(register):
    register("proportional", proportional)
    register("temperature", temperature)
    register("uniform", uniform)


@hookimpl
def register_loss_weightings(register):
    register("static", static)
    register("uncertainty", uncertainty)


@hookimpl
def register_sharing_kinds(register):
    register("hard", hard)
    register("mmoe", mmoe)
    register("ple", ple)


@hookimpl
def register_gradient_surgeries(register):
    register("none", no_surgery)
    register("pcgrad", pcgrad)


def with_strategies(plugins: Iterable[tuple[str, object]]) -> list[tuple[str, object]]:
    """``plugins`` with shopmtl's own strategies first, as :func:`load_plugins` expects them."""
    return [(PROJECT_NAME, sys.modules[__name__]), *plugins]


def load_plugins(builtins: Iterable[tuple[str, object]] = (), **options: Any) -> PluginSet:
    """:func:`shopmtl.registry.manager.load_plugins` with shopmtl's own strategies registered first."""
    return manager.load_plugins(with_strategies(builtins), **options)
