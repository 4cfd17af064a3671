"""From config and registered tasks to arrays the trainer can batch."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from shopmtl.core.config import Config, ConfigError, TaskConfig, closest_key
from shopmtl.core.data.features import EncodedRows, FeatureState, encode_rows, with_derived
from shopmtl.core.data.priors import FittedPrior, PriorError, chosen_prior, fit_prior
from shopmtl.core.data.shard import Shard
from shopmtl.core.data.textbank import TextBank
from shopmtl.registry.spec import SPLITS, BuildContext, HeadSpec, TaskData, TaskSpec
from shopmtl.registry.splits import describe, is_split_source, split_columns, split_frame

log = logging.getLogger(__name__)


@dataclass
class PreparedTask:
    """One task of a run: its spec, rows, feature state and encoded splits."""

    spec: TaskSpec
    config: TaskConfig
    data: TaskData  # the (possibly subsampled) frames the model sees
    state: FeatureState
    #: Encoded splits; ``rows["train"]`` holds only this process's :attr:`shard` of ``data["train"]``.
    rows: dict[str, EncodedRows]
    shard: Shard = Shard()  # the share of the train rows this process trains on (all of them on one process)

    @property
    def name(self) -> str:
        return self.spec.name

    def head_spec(self, hidden_size: int, bank: TextBank) -> HeadSpec:
        """Sizes for building this task's head on an encoder of ``hidden_size``."""
        return head_spec_for(self.spec, self.state, self.config or TaskConfig(), hidden_size, bank)


def head_spec_for(spec: TaskSpec, state: FeatureState, config: TaskConfig, hidden_size: int, bank: TextBank) -> HeadSpec:
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


def select_tasks(names: Iterable[str], registered: Mapping[str, TaskSpec]) -> dict[str, TaskSpec]:
    """The registered tasks called ``names``; an unknown name gets the closest match."""
    names = list(names)
    unknown = [n for n in names if n not in registered]
    if unknown:
        lines = []
        for name in unknown:
            hint = closest_key(name, registered)
            lines.append(f"unknown task '{name}' in tasks:" + (f" did you mean '{hint}'?" if hint else ""))
        lines.append(f"registered tasks: {', '.join(registered) or 'none'} (see `shopmtl tasks`)")
        raise ConfigError("\n".join(lines))
    return {name: registered[name] for name in names}


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
            raise ConfigError(f"tasks.{spec.name}.settings: task '{spec.name}' takes no settings; remove them")
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
        raise ValueError(f"task '{spec.name}': configure returned {type(configured).__name__}, not a TaskSpec")
    kept = ("name", "kind", "text", "text_pair", "labels", "numeric", "categorical", "classes", "settings")
    changed = [f for f in kept if getattr(configured, f) != getattr(spec, f)]
    if changed:
        raise ValueError(f"task '{spec.name}': configure changed {', '.join(changed)}; it may change the head, "
                         "loss, outputs and predict only")
    return dataclasses.replace(configured, configure=None)


class TaskDataError(ValueError):
    """A task's dataset builder failed; the message names the task and how to check it."""


def build_task_data(spec: TaskSpec, config: Config) -> TaskData:
    """Call the task's dataset builder with its validated settings and check the result."""
    task_config = config.tasks.get(spec.name, TaskConfig())
    context = BuildContext(
        settings=task_settings(spec, task_config.settings),
        data_path=config.data.path,
        column_map=dict(config.data.columns),
        seed=config.seed,
    )
    try:
        data = spec.build_dataset(context)
    except Exception as exc:  # noqa: BLE001 -- name the task: `shopmtl plugins` does not build data
        raise TaskDataError(
            f"task '{spec.name}': build_dataset raised {type(exc).__name__}: {exc} -- "
            f"`shopmtl plugins check <its plugin>` (`shopmtl tasks` names it) checks its data, labels and metrics"
        ) from exc
    frames = {}
    for split in SPLITS:
        if split not in data.splits:
            raise ValueError(f"task '{spec.name}': build_dataset returned no '{split}' split; return train, val and test")
        frames[split] = split_as_frame(spec, split, data.splits[split])
    return dataclasses.replace(data, splits={**data.splits, **frames})


def split_as_frame(spec: TaskSpec, split: str, source: Any) -> pd.DataFrame:
    """One split as a pandas frame: a frame as is; Arrow or Parquet (hook API 1.3) checked on its
    schema first, then read (memory-mapped)."""
    if not is_split_source(source):
        raise ValueError(f"task '{spec.name}': the {split} split is {type(source).__name__}; hand over a pandas "
                         "DataFrame, a pyarrow Table or Dataset, or the path of Parquet rows")
    columns = set(split_columns(source))
    missing = [c for c in spec.columns if c not in columns]
    if missing:
        raise ValueError(
            f"task '{spec.name}': the {split} split lacks columns {missing} that the task's schema names "
            f"({describe(source)}); add them to the frame or remove them from the TaskSpec"
        )
    return split_frame(source)


def subsample(data: TaskData, task_config: TaskConfig, seed: int) -> TaskData:
    """Cap train (random rows, by seed) and val/test (random rows) as the config asks."""
    caps = {"train": task_config.max_train_examples}
    caps.update(dict.fromkeys(("val", "test"), task_config.max_eval_examples))
    splits = {}
    for split, frame in data.splits.items():
        keep = kept_rows(len(frame), caps.get(split), seed)
        splits[split] = (frame if keep is None else frame.iloc[keep]).reset_index(drop=True)
    return dataclasses.replace(data, splits=splits)


def kept_rows(n: int, cap: int | None, seed: int) -> np.ndarray | None:
    """Positions of the ``cap`` rows of ``n`` a cap keeps (random by seed, in their order); ``None``: all."""
    if cap is None or n <= cap:
        return None
    return np.sort(pd.Series(np.arange(n)).sample(n=cap, random_state=seed).to_numpy())


def prepare_task(spec: TaskSpec, config: Config, bank: TextBank, state: FeatureState | None = None,
                 shard: Shard = Shard()) -> PreparedTask:
    """Configure, build, subsample and encode one task; fit its feature state on train unless given.

    ``shard``: encode only this process's share of the train rows (val and test are encoded
    whole: evaluation splits them itself). The feature state is fitted on *all* train rows,
    so every process standardises and indexes alike and builds heads of the same shape.
    """
    spec = configure_task(spec, config)
    task_config = config.tasks.get(spec.name, TaskConfig())
    full = build_task_data(spec, config)
    data = subsample(full, task_config, config.seed)
    if spec.derive is not None:  # once per split, so the state is fitted on the derived train columns
        data = dataclasses.replace(data, splits={s: with_derived(spec, f) for s, f in data.splits.items()})
    if len(data["train"]) == 0:
        raise ValueError(f"task '{spec.name}' has no training rows: check its data and settings")
    train_prior = None
    if state is None:
        state = FeatureState.fit(spec, data["train"])
        if task_config.prior is not None:
            state.prior, train_prior = prior_on_all_train_rows(spec, task_config, full["train"], data["val"], config.seed)
            train_prior = train_prior if shard.whole else train_prior[shard.rows(len(train_prior))]
    encoded = {**data.splits, "train": sharded(data["train"], shard)}
    rows = {split: encode_rows(spec, frame, state, bank, train_prior if split == "train" else None)
            for split, frame in encoded.items()}
    return PreparedTask(spec=spec, config=task_config, data=data, state=state, rows=rows, shard=shard)


def prior_on_all_train_rows(spec: TaskSpec, task_config: TaskConfig, train: pd.DataFrame, val: pd.DataFrame,
                            seed: int) -> tuple[FittedPrior, np.ndarray]:
    """The task's prior fitted on *every* train row, and the out-of-fold outputs of the rows the network trains on.

    ``max_train_examples`` caps what the network trains on, for its cost; a classical prior
    costs seconds on the whole split, and a stronger prior is what the head builds on
    (recommend's gradient boosting on 327k rows rather than the network's 20k).
    """
    if spec.derive is not None:
        train = with_derived(spec, train)
    fitted, out_of_fold = fit_prior(spec, str(task_config.prior), train, val, folds=task_config.prior_folds, seed=seed)
    keep = kept_rows(len(train), task_config.max_train_examples, seed)
    return fitted, out_of_fold if keep is None else out_of_fold[keep]


def sharded(frame: pd.DataFrame, shard: Shard) -> pd.DataFrame:
    """The rows of ``frame`` that ``shard`` owns (``frame`` itself when it owns them all)."""
    return frame if shard.whole else frame.iloc[shard.rows(len(frame))].reset_index(drop=True)


def validation_view(task: PreparedTask, max_rows: int | None, seed: int) -> PreparedTask:
    """``task`` with its val split cut to a fixed random sample of ``max_rows`` rows (by seed).

    The periodic validations only pick the best step and decide early stopping, so a
    sample serves them; the final scoring always reads the full splits. The sample is the
    same at every validation, so the scores stay comparable step to step.
    """
    frame = task.data["val"]
    if max_rows is None or len(frame) <= max_rows:
        return task
    keep = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    sampled_rows = task.rows["val"].take(keep)
    data = dataclasses.replace(task.data, splits={**task.data.splits, "val": frame.iloc[keep].reset_index(drop=True)})
    return dataclasses.replace(task, data=data, rows={**task.rows, "val": sampled_rows})
