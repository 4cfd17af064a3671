"""A registered task as a run configures it: selected by name, its settings applied, its head's sizes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError
from shopmtl.core.config import Config, ConfigError, TaskConfig, closest_key
from shopmtl.core.data.features import FeatureState
from shopmtl.core.data.priors import PriorError, chosen_prior
from shopmtl.core.data.textbank import TextBank
from shopmtl.registry.spec import HeadSpec, TaskSpec
from shopmtl.registry.validation import CONFIGURE_KEEPS


def head_spec_for(
    spec: TaskSpec, state: FeatureState, config: TaskConfig, hidden_size: int, bank: TextBank
) -> HeadSpec:
    """The :class:`HeadSpec` of ``spec`` with fitted ``state``, as training and loading build it."""
    return HeadSpec(
        hidden_size=hidden_size,
        n_numeric=len(spec.numeric),
        categorical_cardinalities=state.cardinalities(),
        has_pair=spec.text_pair is not None,
        n_outputs=spec.n_outputs,
        vocab_size=bank.vocab_size if config.bag_of_words else 0,
        pad_token_id=bank.pad_id,
    )


def select_tasks(
    names: Iterable[str],
    registered: Mapping[str, TaskSpec],
    skipped: Mapping[str, str] | None = None,
) -> dict[str, TaskSpec]:
    """The registered tasks called ``names``; an unknown name gets the closest match, and the
    plugins skipped at load (``skipped``: plugin -> why), whose tasks are not registered."""
    names = list(names)
    unknown = [n for n in names if n not in registered]
    if unknown:
        lines = []
        for name in unknown:
            hint = closest_key(name, registered)
            lines.append(
                f"unknown task '{name}' in tasks:" + (f" did you mean '{hint}'?" if hint else "")
            )
        lines.append(f"registered tasks: {', '.join(registered) or 'none'} (see `shopmtl tasks`)")
        for plugin, why in (skipped or {}).items():
            first = str(why).splitlines()[0] if why else "skipped"
            lines.append(
                f"plugin '{plugin}' was skipped at load, so none of its tasks is registered: "
                f"{first} (`shopmtl plugins check {plugin}` says more)"
            )
        raise ConfigError("\n".join(lines))
    return {name: registered[name] for name in names}


def skipped_plugins(plugins: Any) -> dict[str, str]:
    """Plugin -> why, for each plugin of a :class:`~shopmtl.registry.pluginset.PluginSet`
    that was skipped at load (an import error, a wrong hook API, an invalid task)."""
    return {r.name: r.error for r in getattr(plugins, "reports", ()) if r.error}


def check_priors(specs: Mapping[str, TaskSpec], config: Config) -> None:
    """Every ``tasks.<name>.prior`` names a prior its task offers (as configured), before any data is read."""
    for name, spec in specs.items():
        chosen = config.tasks.get(name, TaskConfig()).prior
        if chosen is not None:
            try:
                chosen_prior(configure_task(spec, config), chosen)
            except PriorError as error:
                raise ConfigError(str(error)) from None


def task_settings(spec: TaskSpec, raw: Mapping[str, Any]) -> Any:
    """Validate ``tasks.<name>.settings`` against the task's settings dataclass."""
    if spec.settings is None:
        if raw:
            raise ConfigError(
                f"tasks.{spec.name}.settings: task '{spec.name}' takes no settings; remove them"
            )
        return None
    valid = [f.name for f in dataclasses.fields(spec.settings)]
    for key in raw:
        if key not in valid:
            hint = closest_key(key, valid)
            raise ConfigError(
                f"unknown key 'tasks.{spec.name}.settings.{key}'"
                + (f": did you mean '{hint}'?" if hint else f"; valid keys: {', '.join(valid)}")
            )
    try:
        return TypeAdapter(spec.settings).validate_python(dict(raw))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"tasks.{spec.name}.settings: {problems}") from None


def configure_task(spec: TaskSpec, config: Config) -> TaskSpec:
    """The task as the run's ``tasks.<name>.settings`` make it (``TaskSpec.configure``).

    Returns ``spec`` itself for a task without ``configure``; the configured spec has
    ``configure=None``, so configuring it again is a no-op.
    """
    if spec.configure is None:
        return spec
    task_config = config.tasks.get(spec.name, TaskConfig())
    configured = spec.configure(task_settings(spec, task_config.settings))
    if not isinstance(configured, TaskSpec):
        raise ValueError(
            f"task '{spec.name}': configure returned {type(configured).__name__}, not a TaskSpec"
        )
    changed = [f for f in CONFIGURE_KEEPS if getattr(configured, f) != getattr(spec, f)]
    if changed:
        raise ValueError(
            f"task '{spec.name}': configure changed {', '.join(changed)}; it may change the head, "
            "loss, outputs and predict only"
        )
    return dataclasses.replace(configured, configure=None)
