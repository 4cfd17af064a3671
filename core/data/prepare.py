"""From config and registered tasks to arrays the trainer can batch."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from shopmtl.core.config import Config, TaskConfig
from shopmtl.core.data.checks import DataCheck, check_splits
from shopmtl.core.data.decodecheck import check_decode
from shopmtl.core.data.features import EncodedRows, FeatureState, encode_rows
from shopmtl.core.data.partition import Shard
from shopmtl.core.data.priors import FittedPrior, fit_prior, prior_outputs
from shopmtl.core.data.rowstore import RowStore
from shopmtl.core.data.task_config import configure_task, head_spec_for, task_settings
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.data.trainsplit import TrainSplit, kept_rows
from shopmtl.registry.derived import with_derived
from shopmtl.registry.spec import SPLITS, BuildContext, HeadSpec, TaskData, TaskSpec
from shopmtl.registry.splits import split_frame

log = logging.getLogger(__name__)


@dataclass
class PreparedTask:
    """One task of a run: its spec, rows, feature state and encoded splits."""

    spec: TaskSpec
    config: TaskConfig
    #: The task's data: val and test as the (possibly capped) frames the model is scored on,
    #: train as the plugin handed it over (read through :attr:`train`).
    data: TaskData
    state: FeatureState
    #: Encoded splits; ``rows["train"]`` holds only this process's :attr:`shard` of the train rows.
    rows: dict[str, EncodedRows]
    shard: Shard = (
        Shard()
    )  # the share of the train rows this process trains on (all of them on one process)
    train: TrainSplit | None = None  # the train split and its cap; None: data["train"] whole

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def train_rows(self) -> int:
        """Train rows the network trains on, over all processes (the cap applied)."""
        return len(self.train) if self.train is not None else len(self.data["train"])

    def with_train_frame(self) -> TaskData:
        """:attr:`data` with train as one frame of the rows the network trains on (derived features
        computed), as a task's baselines read it. Read from the source on each call."""
        frame = self.train.frame() if self.train is not None else self.data["train"]
        return dataclasses.replace(
            self.data, splits={**self.data.splits, "train": with_derived(self.spec, frame)}
        )

    def head_spec(self, hidden_size: int, bank: TextBank) -> HeadSpec:
        """Sizes for building this task's head on an encoder of ``hidden_size``."""
        return head_spec_for(self.spec, self.state, self.config or TaskConfig(), hidden_size, bank)


#: Runs a piece of set-up work once for all processes and returns its result (:func:`call`: here).
Once = Callable[[Callable[[], Any]], Any]


def call(work: Callable[[], Any]) -> Any:
    """Run ``work`` in this process: the :data:`Once` of a one-process run."""
    return work()


#: Stands for the task's plugin in a :class:`TaskDataError` raised where the plugin is not known.
ITS_PLUGIN = "<its plugin>"


class TaskDataError(ValueError):
    """A task's data cannot train; the message names the task and the command that checks it."""

    def __init__(self, message: str, task: str | None = None) -> None:
        super().__init__(message)
        self.task = task

    def for_plugin(self, plugin: str) -> TaskDataError:
        """The same error with the task's plugin named (a caller that knows it fills it in)."""
        return TaskDataError(str(self).replace(ITS_PLUGIN, plugin), self.task)


def build_task_data(spec: TaskSpec, config: Config) -> TaskData:
    """Call the task's dataset builder with its validated settings; every split as a pandas frame."""
    data = build_task_sources(spec, config)
    return dataclasses.replace(
        data, splits={**data.splits, "train": split_frame(data.splits["train"])}
    )


def build_task_sources(spec: TaskSpec, config: Config, check: bool = True) -> TaskData:
    """Call the task's dataset builder and check the result (:func:`check_task_data`): val and
    test as pandas frames, train as handed over (a frame, Arrow, or Parquet on disk)."""
    data, _ = built_and_checked(spec, config, check=check)
    return data


def built_and_checked(
    spec: TaskSpec, config: Config, check: bool = True
) -> tuple[TaskData, DataCheck | None]:
    """The task's data (val and test as frames) and what :func:`check_splits` found on every
    row of it; refused with every problem at once when it found any."""
    data = call_builder(spec, config)
    found = None
    if check:
        found = check_splits(spec, data.splits)
        refuse_problems(spec, found.problems)
    else:
        missing = [s for s in SPLITS if s not in data.splits]
        if missing:
            refuse_problems(spec, [f"build_dataset returned no {missing} split"])
    frames = {s: split_frame(data.splits[s]) for s in ("val", "test")}
    if check:  # predict and serve call decode: a decode that cannot is refused before training
        refuse_problems(spec, check_decode(spec, with_derived(spec, frames["val"])))
    return dataclasses.replace(data, splits={**data.splits, **frames}), found


def call_builder(spec: TaskSpec, config: Config) -> TaskData:
    """The task's :class:`TaskData`, built with the run's settings, data path and seed."""
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
            f"`shopmtl plugins check {ITS_PLUGIN}` checks its data, labels and metrics",
            spec.name,
        ) from exc
    if not isinstance(data, TaskData) or not isinstance(data.splits, Mapping):
        raise TaskDataError(
            f"task '{spec.name}': build_dataset returned {type(data).__name__}, not a TaskData "
            "whose splits map train, val and test to their rows"
        )
    return data


def subsample(data: TaskData, task_config: TaskConfig, seed: int) -> TaskData:
    """Cap train (random rows, by seed) and val/test (random rows) as the config asks (splits as frames)."""
    caps = {"train": task_config.max_train_examples}
    caps.update(dict.fromkeys(("val", "test"), task_config.max_eval_examples))
    return dataclasses.replace(
        data,
        splits={
            split: capped(frame, caps.get(split), seed) for split, frame in data.splits.items()
        },
    )


def capped(frame: pd.DataFrame, cap: int | None, seed: int) -> pd.DataFrame:
    """``cap`` random rows of ``frame`` (by seed, in their order); all of them without a cap."""
    keep = kept_rows(len(frame), cap, seed)
    return (frame if keep is None else frame.iloc[keep]).reset_index(drop=True)


def prepare_task(
    spec: TaskSpec,
    config: Config,
    bank: TextBank,
    state: FeatureState | None = None,
    shard: Shard = Shard(),
    scratch: Path | None = None,
    once: Once = call,
) -> PreparedTask:
    """Configure, build, subsample and encode one task; fit its feature state on train unless given.

    Train is read a chunk at a time (:class:`TrainSplit`): every kept row is checked and
    feeds the feature state, so every process standardises and indexes alike and builds
    heads of the same shape; only ``shard``'s rows are encoded, into memory-mapped arrays
    in ``scratch`` when given. Val and test are held whole: evaluation splits them itself.
    A prior is fitted through ``once``: a multi-process run fits it on its main process
    and hands it to the others (:func:`~shopmtl.core.engine.collective.on_main_shared`).
    """
    spec = configure_task(spec, config)
    task_config = config.tasks.get(spec.name, TaskConfig())
    built, found = built_and_checked(spec, config)
    train = TrainSplit.of(built.splits["train"], task_config.max_train_examples, config.seed)
    evaluation = {
        s: with_derived(spec, capped(built[s], task_config.max_eval_examples, config.seed))
        for s in ("val", "test")
    }
    train_prior = None
    if state is None:
        state = found.state  # fitted on every train row, whatever max_train_examples keeps
        if task_config.prior is not None:
            state.prior, train_prior = once(
                lambda: prior_for_network_rows(
                    spec, task_config, train, evaluation["val"], config.seed
                )
            )
    rows = {
        "train": encode_train(
            spec, train, train.positions(shard), state, bank, train_prior, scratch
        )
    }
    rows.update(
        {split: encode_rows(spec, frame, state, bank) for split, frame in evaluation.items()}
    )
    data = dataclasses.replace(
        built, splits={**built.splits, **evaluation}
    )  # train: as the plugin handed it over
    return PreparedTask(
        spec=spec, config=task_config, data=data, state=state, rows=rows, shard=shard, train=train
    )


def read_columns(spec: TaskSpec) -> list[str] | None:
    """The columns encoding reads: the schema's own, or every column when derived features may read others."""
    return None if spec.derive is not None else list(dict.fromkeys(spec.columns))


def refuse_problems(spec: TaskSpec, problems: list[str]) -> None:
    """Raise :class:`TaskDataError` listing ``problems`` (what ``shopmtl plugins check`` finds), if any."""
    if problems:
        raise TaskDataError(
            f"task '{spec.name}': its data cannot train ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n  - "
            + "\n  - ".join(problems)
            + f"\n`shopmtl plugins check {ITS_PLUGIN}` finds the same problems",
            spec.name,
        )


def encode_train(
    spec: TaskSpec,
    train: TrainSplit,
    positions: np.ndarray,
    state: FeatureState,
    bank: TextBank,
    prior: np.ndarray | None = None,
    scratch: Path | None = None,
) -> EncodedRows:
    """The train rows at ``positions``, encoded a chunk at a time (``prior``: the prior's outputs for the
    rows of ``train.positions()``, from :func:`prior_for_network_rows`)."""
    store = RowStore(len(positions), scratch)
    network = train.positions() if prior is not None else None
    for slots, frame in train.chunks(positions, read_columns(spec)):
        chunk_prior = None if prior is None else prior[np.searchsorted(network, positions[slots])]
        store.put(slots, encode_rows(spec, frame, state, bank, chunk_prior))
    return store.rows()


def prior_for_network_rows(
    spec: TaskSpec, task_config: TaskConfig, train: TrainSplit, val: pd.DataFrame, seed: int
) -> tuple[FittedPrior, np.ndarray]:
    """The task's prior fitted on the train rows, and its outputs for the rows the network trains on.

    The prior is fitted on every train row, up to ``prior_max_rows`` (random, by seed): the
    network's rows (``max_train_examples`` caps them, for its cost) are a subset of those, so a
    stronger prior is what the head builds on (recommend's gradient boosting on 327k rows
    rather than the network's 20k). The outputs are aligned with :meth:`TrainSplit.positions`
    of the whole run: out-of-fold for each row the prior was fitted on (it never sees the
    label it predicts), the fitted prior's for any other. A classical model holds its rows
    in memory: they are read as one frame here, and dropped after.
    """
    fitted_rows = kept_rows(train.total, task_config.prior_max_rows, seed)  # None: every row
    frame = with_derived(spec, train.read(fitted_rows))
    fitted, out_of_fold = fit_prior(
        spec, str(task_config.prior), frame, val, folds=task_config.prior_folds, seed=seed
    )
    network = train.positions()
    if fitted_rows is None:
        return fitted, out_of_fold[network]
    at = np.minimum(np.searchsorted(fitted_rows, network), len(fitted_rows) - 1)
    seen = fitted_rows[at] == network
    outputs = np.empty((len(network), out_of_fold.shape[1]), dtype=np.float32)
    outputs[seen] = out_of_fold[at[seen]]
    if not seen.all():
        outputs[~seen] = prior_outputs(spec, fitted, with_derived(spec, train.read(network[~seen])))
    return fitted, outputs


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
    data = dataclasses.replace(
        task.data, splits={**task.data.splits, "val": frame.iloc[keep].reset_index(drop=True)}
    )
    return dataclasses.replace(task, data=data, rows={**task.rows, "val": sampled_rows})
