"""The task contract: what a plugin hands shopmtl for each task it registers.

A task is plain data plus a few callables (composition, no base class to inherit).
Its *schema* -- which columns hold the text, the features and the labels -- is declared
up front, so shopmtl can check the task at registration time, before any data is read:

    TaskSpec(
        name="price_bin", kind="multiclass", classes=("<1", "1-2", ...),
        text="description", labels=("label",),
        build_dataset=load_price_bins,            # BuildContext -> TaskData
        metrics=price_bin_metrics,                # EvalBatch -> {name: value}
        metric_directions={"accuracy": "max", "macro_f1": "max"},
        primary_metric="macro_f1",
    )

Head, loss and decoding default to sensible choices for the task's ``kind``
(see :mod:`shopmtl.core.model.heads` and :mod:`shopmtl.core.model.losses`); a task overrides any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shopmtl.registry.priorstate import PriorState
from shopmtl.registry.splits import SplitSource, split_frame

if TYPE_CHECKING:  # keep `import shopmtl` light: torch/pandas load when a task is used
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

TaskKind = Literal["regression", "binary", "multiclass", "multilabel"]
TASK_KINDS: tuple[str, ...] = ("regression", "binary", "multiclass", "multilabel")

#: "max": higher is better; "min": lower is better; "info": reported, never compared
#: (a confusion matrix, a count).
Direction = Literal["max", "min", "info"]
DIRECTIONS: tuple[str, ...] = ("max", "min", "info")

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class BuildContext:
    """What a task's dataset builder receives.

    Attributes:
        settings: the task's own settings, an instance of ``TaskSpec.settings``
            validated from the config (``tasks.<name>.settings``); ``None`` when the
            task declares none. Every field has a default, so ``BuildContext()`` is a
            valid context for a test (the builder then uses its own defaults).
        data_path: the transactions table from the config's ``data.path``; ``None``
            means "use your bundled default".
        column_map: canonical column name -> the name in the user's file
            (``{"InvoiceNo": "Invoice"}``), from ``data.columns``.
        seed: the run's seed, for any sampling the builder does.
    """

    settings: Any = None
    data_path: str | None = None
    column_map: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class TaskData:
    """A task's rows, one table per split (``train``, ``val``, ``test``).

    Each split holds at least the columns the task's schema names. A label that is
    missing is ``NaN``: the loss masks it and metrics skip it.

    A split is a pandas frame, or (hook API 1.3) a ``pyarrow.Table``, a
    ``pyarrow.dataset.Dataset`` or the path of Parquet rows -- a file, a folder or a list
    of files (:mod:`shopmtl.registry.splits`): a builder that writes its rows to disk as it
    goes need not hold them in memory. ``data[split]`` is always a pandas frame; shopmtl
    checks a Parquet split's columns against its schema before reading a row.

    .. versionchanged:: 1.3 splits may be Arrow or Parquet-backed.
    """

    splits: Mapping[str, SplitSource]
    #: Anything else the task's metrics or baselines need (ranking candidates, a
    #: product catalogue); handed back unchanged in :attr:`EvalBatch.extras`.
    extras: Mapping[str, Any] = field(default_factory=dict)
    #: The data files the rows were read from; a run records each with its sha256 in
    #: ``environment.json``, so a figure can be traced to the exact data.
    sources: tuple[str, ...] = ()

    def __getitem__(self, split: str) -> pd.DataFrame:
        """The split as a pandas frame (an Arrow or Parquet split is read on each call)."""
        return split_frame(self.splits[split])


@dataclass(frozen=True)
class HeadSpec:
    """The sizes a head is built from.

    Attributes:
        hidden_size: width of the encoder's pooled text vector.
        n_numeric: number of numeric features (each arrives standardised, with a
            0/1 "was missing" flag beside it).
        categorical_cardinalities: vocabulary size of each categorical feature
            (index 0 is reserved for "unknown").
        has_pair: whether a second text (``text_pair``) is encoded too.
        n_outputs: width of the head's output (1 for regression/binary, the number
            of classes or labels otherwise; :attr:`TaskSpec.outputs` when the task sets it).
        vocab_size: the tokenizer's vocabulary size when the head gets the texts' token
            ids (:attr:`HeadInput.text_tokens`, ``tasks.<name>.bag_of_words``); 0 when not.
        pad_token_id: the id that pads ``text_tokens``/``pair_tokens``.
    """

    hidden_size: int
    n_numeric: int
    categorical_cardinalities: tuple[int, ...]
    has_pair: bool
    n_outputs: int
    vocab_size: int = 0
    pad_token_id: int = 0


@dataclass(frozen=True)
class HeadInput:
    """One batch as a head sees it. Tensors share the batch dimension ``B``.

    Attributes:
        text: ``(B, hidden)`` pooled encoder output of the task's text.
        pair: ``(B, hidden)`` pooled output of ``text_pair``, or ``None``.
        numeric: ``(B, n_numeric)`` standardised numeric features, missing set to 0.
        numeric_missing: ``(B, n_numeric)`` 1.0 where the value was missing.
        categorical: ``(B, n_categorical)`` int64 vocabulary indices.
        text_tokens: ``(B, L)`` int64 token ids of each row's text, padded with
            :attr:`HeadSpec.pad_token_id`, when :attr:`HeadSpec.vocab_size` is set;
            else ``None``.
        pair_tokens: the same for ``text_pair``, or ``None``.
    """

    text: torch.Tensor
    pair: torch.Tensor | None
    numeric: torch.Tensor
    numeric_missing: torch.Tensor
    categorical: torch.Tensor
    text_tokens: torch.Tensor | None = None
    pair_tokens: torch.Tensor | None = None


@dataclass(frozen=True)
class EvalBatch:
    """Everything a task's metrics function gets for one split.

    Attributes:
        split: ``"val"`` or ``"test"``.
        frame: the split's rows (the task's frame, in order).
        predictions: ``(n, n_predictions)`` model outputs after the task's ``predict``
            or, by default, the kind's activation: values for regression, probabilities
            otherwise (see :attr:`TaskSpec.n_predictions`).
        labels: ``(n, n_label_columns)`` labels, ``NaN`` where missing.
        score: scores any extra rows with the same model (same columns as
            ``frame``) and returns their predictions -- e.g. ranking candidates.
        extras: the task's :attr:`TaskData.extras`.
        calibration: what the task's ``calibrate`` fitted on val (``{}`` if none).
        score_stream: (hook API 1.4) like ``score`` for an iterable of frames, scored as their
            concatenation (the same predictions, in order), a chunk of rows at a time: extra rows
            too many to hold at once can be drawn and handed over piece by piece. ``None`` where
            the caller offers no stream (``plugins check``, an older shopmtl): use ``score``.
    """

    split: str
    frame: pd.DataFrame
    predictions: np.ndarray
    labels: np.ndarray
    score: Callable[[pd.DataFrame], np.ndarray]
    extras: Mapping[str, Any] = field(default_factory=dict)
    calibration: Mapping[str, Any] = field(default_factory=dict)
    score_stream: Callable[[Iterable[pd.DataFrame]], np.ndarray] | None = None


@dataclass(frozen=True)
class DerivedFeatures:
    """Feature columns computed from a task's raw input columns (:attr:`TaskSpec.derive`).

    Attributes:
        columns: the columns ``compute`` returns; each must be one of the task's
            ``numeric`` or ``categorical`` columns.
        compute: ``frame -> DataFrame`` with exactly ``columns``, one row per input
            row (same index). It reads only input columns, never labels.
    """

    columns: tuple[str, ...]
    compute: Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Prior:
    """A classical model a task offers as the starting point of its head (stacking).

    With ``tasks.<name>.prior: <its name>`` in the config, shopmtl fits the prior on the
    run's train rows and adds its raw output to the head's: the network learns a residual
    over a strong classical model (Wide & Deep's idea, with the wide part fitted first).
    The train rows get *out-of-fold* predictions (``tasks.<name>.prior_folds`` folds, each
    fitted without its own rows), so the head never learns from a prior that has seen the
    label it predicts; val, test and ``predict`` rows get the prior fitted on all train rows.

    Attributes:
        description: one line for ``shopmtl tasks``.
        fit: ``(train, val) -> fitted``: the fitted model from train rows (inputs and
            labels). ``val`` may choose hyperparameters, as a data scientist would (never
            its labels as training rows). Return ``None`` for a prior with nothing to fit
            (a mean of lags).
        predict: ``(fitted, frame) -> (n, n_outputs)`` raw outputs in the head's space:
            values for regression, logits for binary/multilabel, class logits (e.g. log
            probabilities) for multiclass. It reads input columns only, never labels.
        group: a column whose rows must fall in the same fold (e.g. one customer's
            candidates), or ``None`` for plain shuffled folds.
        state: ``fitted -> PriorState``: the fitted model as arrays and JSON, saved with the
            run (never pickled). Required unless ``fit`` returns ``None``.
        from_state: ``PriorState -> fitted``: the model ``state`` described, rebuilt when a
            run is opened; ``predict`` must give the same outputs with it.

    .. versionchanged:: 1.5 ``state`` and ``from_state`` replace saving the fitted object
       with joblib (a pickle, which runs code when loaded).
    """

    description: str
    fit: Callable[[pd.DataFrame, pd.DataFrame], Any]
    predict: Callable[[Any, pd.DataFrame], np.ndarray]
    group: str | None = None
    state: Callable[[Any], PriorState] | None = None
    from_state: Callable[[PriorState], Any] | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One task, as a plugin registers it.

    Attributes:
        name: unique identifier (letters, digits, ``_``); used in configs and files.
        kind: ``regression``, ``binary``, ``multiclass`` or ``multilabel``.
        description: one line for ``shopmtl tasks``.
        text: column holding the text fed to the shared encoder.
        labels: label column(s). One column for regression, binary and multiclass
            (the class index); one 0/1 column per label for multilabel.
        build_dataset: ``BuildContext -> TaskData``.
        metrics: ``EvalBatch -> {metric name: value}``. Use scikit-learn or
            torchmetrics, and skip missing labels.
        metric_directions: every metric name ``metrics`` returns, with ``"max"``,
            ``"min"`` or ``"info"``.
        primary_metric: the metric early stopping and model selection use.
        text_pair: optional second text column, encoded by the same encoder.
        numeric: numeric feature columns (``NaN`` = missing).
        categorical: categorical feature columns (any hashable values).
        keys: identifier columns carried into ``predict`` and ``data`` output.
        classes: class names (multiclass) -- the label column holds their index.
        settings: a dataclass type for ``tasks.<name>.settings`` in the config; its
            defaults are the task's defaults.
        build_head: ``HeadSpec -> nn.Module`` mapping a :class:`HeadInput` to
            ``(B, n_outputs)`` raw outputs. Default: :func:`blocks.default_head`.
        loss: ``(outputs, labels) -> scalar`` that ignores ``NaN`` labels.
            Default: the kind's masked loss from :mod:`shopmtl.core.model.losses`.
        decode: ``predictions -> DataFrame`` of columns a person reads (units, a
            class name, label names, a probability). Default: by kind.
        baselines: ``(TaskData, split) -> {baseline name: {metric: value}}``, the
            trivial baselines shown beside the model's metrics.
        calibrate: ``EvalBatch -> JSON-able dict`` fitted on the validation split of
            the best model (decision thresholds, a temperature). It is saved with the
            model (``calibration.json``), given to ``metrics`` as
            :attr:`EvalBatch.calibration`, and to ``decode`` as a second argument: a
            task with ``calibrate`` has ``decode(predictions, calibration)``.
        outputs: width of the head's raw output when it is not the kind's (e.g. the
            three parameters of a distribution); ``None``: the kind's width. A task
            that sets it also sets ``predict``.
        predict: ``raw outputs (B, n_outputs) -> predictions (B, n_predictions)``, the
            values ``metrics`` and ``decode`` read (e.g. a distribution's mean).
            Default: the kind's activation (:func:`blocks.activate`).
        configure: ``settings -> TaskSpec``: the task as its validated settings make it
            (a loss, head, ``outputs`` and ``predict`` chosen in the config). shopmtl
            calls it once per run, before building the head, with the run's
            ``tasks.<name>.settings``; the spec it returns must keep the name, kind,
            columns and metrics. ``None``: settings only reach ``build_dataset``.
        derive: :class:`DerivedFeatures`: feature columns the task computes from its
            other input columns, on every frame -- train, evaluation and ``predict``
            input alike -- so callers pass only the raw inputs. Use it for what the
            encoder cannot see, e.g. counts over a history longer than
            ``encoder.max_length``.
        priors: named :class:`Prior` models the config may pick as the head's starting
            point (``tasks.<name>.prior``); none is used unless the config names one.
    """

    name: str
    kind: TaskKind
    description: str
    text: str
    labels: tuple[str, ...]
    build_dataset: Callable[[BuildContext], TaskData]
    metrics: Callable[[EvalBatch], Mapping[str, Any]]
    metric_directions: Mapping[str, Direction]
    primary_metric: str
    text_pair: str | None = None
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    settings: type | None = None
    build_head: Callable[[HeadSpec], nn.Module] | None = None
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    decode: Callable[[np.ndarray], pd.DataFrame] | None = None
    baselines: Callable[[TaskData, str], Mapping[str, Mapping[str, Any]]] | None = None
    calibrate: Callable[[EvalBatch], Mapping[str, Any]] | None = None
    outputs: int | None = None
    predict: Callable[[torch.Tensor], torch.Tensor] | None = None
    configure: Callable[[Any], TaskSpec] | None = None
    derive: DerivedFeatures | None = None
    priors: Mapping[str, Prior] = field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        """Width of the head's raw output for this task (``outputs``, or the kind's)."""
        if self.outputs is not None:
            return self.outputs
        return self.n_predictions

    @property
    def n_predictions(self) -> int:
        """Width of the predictions metrics read: 1, or one per class or label."""
        if self.kind == "multiclass":
            return len(self.classes)
        if self.kind == "multilabel":
            return len(self.labels)
        return 1

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column a split frame must hold (derived ones are added, not required)."""
        pair = (self.text_pair,) if self.text_pair else ()
        derived = set(self.derive.columns) if self.derive else set()
        every = (*self.keys, self.text, *pair, *self.numeric, *self.categorical, *self.labels)
        return tuple(c for c in every if c not in derived)


Register = Callable[[TaskSpec], None]
"""The callback ``register_tasks`` hooks receive: call it once per task."""


SamplerFactory = Callable[[Mapping[str, int], Mapping[str, Any]], Mapping[str, float]]
"""A task sampler: ``(train rows per task, sampler.options) -> probability per task``."""

LossWeightingFactory = Callable[
    [Sequence[str], Mapping[str, float], Mapping[str, Any]], "nn.Module"
]
"""A loss weighting: ``(task names, static weights, options) -> nn.Module`` whose
``forward(task, loss)`` returns the loss to back-propagate. Its parameters (if any) are
trained with the heads and saved with the model."""

SharingFactory = Callable[[Sequence[str], int, Mapping[str, Any]], "nn.Module | None"]
"""A sharing kind: ``(task names, pooled width, sharing options) -> nn.Module | None``.
The module's ``forward(task, pooled)`` returns the vector that task's head reads, of the
same width; ``None`` means hard sharing (every head reads the pooled vector). Its
parameters train with the encoder and are saved with the model."""

GradientSurgeryFactory = Callable[
    [Sequence["torch.nn.Parameter"], Mapping[str, Any]], "GradientSurgery | None"
]
"""A gradient surgery: ``(shared parameters, options) -> GradientSurgery | None``
(``None``: plain summed gradients). ``options`` holds ``training.gradient_surgery_options``
plus ``seed``, ``tasks`` and ``gradient_accumulation_steps``; raise ``ValueError`` to
reject a configuration, the message saying what to change."""


class GradientSurgery(Protocol):
    """Combines the tasks' gradients on the shared parameters within one optimiser step."""

    def capture(self, task: str) -> None:
        """After ``task``'s backward: take the shared parameters' gradients into its slot."""

    def apply(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Before the optimiser step: combine the slots into ``.grad`` (``reduce`` averages
        a tensor across processes)."""


@dataclass(frozen=True)
class MetricSpec:
    """An extra metric a plugin adds to a task (registered with ``register_metrics``).

    Attributes:
        task: the task it applies to.
        name: metric name, unique within the task.
        direction: ``"max"``, ``"min"`` or ``"info"``.
        compute: ``EvalBatch -> value``.
    """

    task: str
    name: str
    direction: Direction
    compute: Callable[[EvalBatch], Any]
