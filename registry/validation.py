"""Check a registered task before any data is read, with messages its author can act on.

:func:`validate_task` returns a list of problems, empty when the task is fine. Each
problem says what is wrong *and* how to fix it, because the person reading it is a
plugin author who may never open shopmtl's source::

    >>> validate_task(TaskSpec(name="Basket-Size", ...))
    ["name 'Basket-Size' is not a valid task name: use lower-case letters, digits and
      '_', starting with a letter (e.g. name='basket_size')"]

The checks, in order: the schema (name, kind, columns, classes), the metrics
(directions, primary metric), the callables, and finally a dry run of the head and
the loss on a dummy batch of 4 rows with one label missing -- the cheapest way to
catch a head whose width does not fit its loss, or a loss that turns ``NaN`` labels
into a ``NaN`` loss, at registration rather than an hour into training.

The dry run runs inside :func:`torch.random.fork_rng`, so validating tasks never
changes the random state a later seeded run starts from.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from shopmtl.registry.dryrun import check_head_and_loss
from shopmtl.registry.messages import choices as _choices
from shopmtl.registry.messages import did_you_mean as _did_you_mean
from shopmtl.registry.messages import error as _exc
from shopmtl.registry.messages import short as _short
from shopmtl.registry.spec import DIRECTIONS, TASK_KINDS, DerivedFeatures, Prior, TaskSpec

__all__ = ["NAME_PATTERN", "check_head_and_loss", "validate_task"]

#: What a task name looks like: it is used in configs, file names and metric keys.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


#: The fields a task's ``configure`` may not change: the data and the head's shape follow them.
CONFIGURE_KEEPS = (
    "name",
    "kind",
    "text",
    "text_pair",
    "labels",
    "numeric",
    "categorical",
    "classes",
    "settings",
)


def validate_task(spec: Any) -> list[str]:
    """Every problem with ``spec``, each a sentence saying what is wrong and how to fix it.

    An empty list means the task can be registered. Checks that depend on an earlier
    one (the head dry run needs a valid kind and label columns) are skipped when
    that one failed, so every message is about a real cause, not a consequence.
    """
    if not isinstance(spec, TaskSpec):
        return [
            f"register() got {type(spec).__name__} {_short(spec)}, not a TaskSpec: "
            "call register(shopmtl.TaskSpec(name=..., kind=..., ...))"
        ]
    schema = _check_kind(spec) + _check_columns(spec) + _check_classes(spec)
    callables = _check_callables(spec)
    settings = _check_settings(spec)
    problems = _check_name(spec) + schema + _check_metrics(spec) + callables + settings
    if not schema and not callables:
        # The dry run needs a sound schema; on a broken one it would only repeat it.
        problems += check_head_and_loss(spec)
        if spec.configure is not None and not settings and not problems:
            problems += _check_configure(spec)
    return problems


def _check_configure(spec: TaskSpec) -> list[str]:
    """Configure the task with its default settings and dry-run the result."""
    try:
        configured = spec.configure(spec.settings() if spec.settings is not None else None)
    except Exception as exc:  # noqa: BLE001
        return [
            f"configure raised {_exc(exc)} on the default settings: it takes the task's settings instance"
        ]
    if not isinstance(configured, TaskSpec):
        return [
            f"configure returned {_short(configured)}, not a TaskSpec: return e.g. dataclasses.replace(spec, loss=...)"
        ]
    changed = [f for f in CONFIGURE_KEEPS if getattr(configured, f) != getattr(spec, f)]
    if changed:
        return [
            f"configure changed {', '.join(changed)}: it may change the head, loss, outputs and predict only"
        ]
    return [
        f"with its default settings: {p}"
        for p in check_head_and_loss(dataclasses.replace(configured, configure=None))
    ]


# --------------------------------------------------------------------------- schema


def _check_name(spec: TaskSpec) -> list[str]:
    name = spec.name
    if not isinstance(name, str) or not name:
        return [
            f"name {name!r} is empty or not a string: name the task with lower-case letters, digits "
            "and '_', starting with a letter (e.g. name='basket_size')"
        ]
    if NAME_PATTERN.fullmatch(name):
        return []
    suggestion = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if not suggestion or not suggestion[0].isalpha():
        suggestion = f"task_{suggestion}".rstrip("_")
    return [
        f"name {name!r} is not a valid task name: use lower-case letters, digits and '_', "
        f"starting with a letter (e.g. name={suggestion!r})"
    ]


def _check_kind(spec: TaskSpec) -> list[str]:
    if spec.kind in TASK_KINDS:
        return []
    return [
        f"kind {spec.kind!r} is not a task kind: use one of {_choices(TASK_KINDS)}{_did_you_mean(spec.kind, TASK_KINDS)}"
    ]


def _check_columns(spec: TaskSpec) -> list[str]:
    problems: list[str] = []
    if not isinstance(spec.text, str) or not spec.text:
        problems.append(
            f"text {spec.text!r} is not a column name: set text= to the column holding the text to encode"
        )
    if spec.text_pair is not None and (not isinstance(spec.text_pair, str) or not spec.text_pair):
        problems.append(
            f"text_pair {spec.text_pair!r} is not a column name: set it to a column, or leave it None"
        )

    for field in ("labels", "numeric", "categorical", "keys"):
        value = getattr(spec, field)
        if isinstance(value, str):
            problems.append(
                f"{field} is the string {value!r}, not a tuple of column names: write {field}=({value!r},)"
            )
        elif not isinstance(value, (tuple, list)) or not all(
            isinstance(c, str) and c for c in value
        ):
            problems.append(
                f"{field} {value!r} must be a tuple of non-empty column names, e.g. {field}=('column',)"
            )
        elif len(set(value)) != len(value):
            problems.append(f"{field} {tuple(value)!r} names a column twice: list each column once")
    if problems:
        return problems

    if not spec.labels:
        problems.append("labels is empty: name the label column(s), e.g. labels=('label',)")
    elif spec.kind != "multilabel" and len(spec.labels) != 1 and spec.kind in TASK_KINDS:
        problems.append(
            f"kind {spec.kind!r} takes exactly one label column but labels has {len(spec.labels)} "
            f"({', '.join(spec.labels)}): keep one column, or use kind='multilabel' for one 0/1 column per label"
        )

    inputs = {
        spec.text,
        *((spec.text_pair,) if spec.text_pair else ()),
        *spec.numeric,
        *spec.categorical,
    }
    leaked = [c for c in spec.labels if c in inputs]
    if leaked:
        problems.append(
            f"column(s) {', '.join(map(repr, leaked))} are both a label and a model input: "
            "the model would see its own answer -- remove them from text/text_pair/numeric/categorical"
        )
    both = sorted(set(spec.numeric) & set(spec.categorical))
    if both:
        problems.append(
            f"column(s) {', '.join(map(repr, both))} are both numeric and categorical: pick one"
        )
    return problems + _check_derive(spec)


def _check_derive(spec: TaskSpec) -> list[str]:
    derive = spec.derive
    if derive is None:
        return []
    if not isinstance(derive, DerivedFeatures) or not callable(derive.compute):
        return [
            f"derive {derive!r} is not a DerivedFeatures: write derive=DerivedFeatures(columns=(...), compute=fn)"
        ]
    features = {*spec.numeric, *spec.categorical}
    if isinstance(derive.columns, str) or not derive.columns:
        return ["derive.columns must be a non-empty tuple of column names"]
    stray = [c for c in derive.columns if c not in features]
    if stray:
        return [
            f"derive.columns {stray} are not numeric or categorical features of the task: "
            "add them to numeric= or categorical= so the model reads them"
        ]
    return []


def _check_classes(spec: TaskSpec) -> list[str]:
    classes = spec.classes
    if isinstance(classes, str):
        return [
            f"classes is the string {classes!r}, not a tuple of class names: write classes=('a', 'b', ...)"
        ]
    if not isinstance(classes, (tuple, list)):
        return [f"classes {classes!r} must be a tuple of class names"]
    if spec.kind != "multiclass":
        return []
    if len(classes) < 2:
        return [
            f"kind 'multiclass' needs at least 2 classes but classes={tuple(classes)!r}: list the class names "
            "(the label column holds their index), or use kind='binary' for a yes/no task"
        ]
    if len(set(classes)) != len(classes):
        return [f"classes {tuple(classes)!r} lists a class twice: class names must be unique"]
    return []


def _check_metrics(spec: TaskSpec) -> list[str]:
    directions = spec.metric_directions
    if not isinstance(directions, Mapping) or not directions:
        return [
            f"metric_directions {directions!r} must be a non-empty mapping of every metric name to "
            f"{_choices(DIRECTIONS)}, e.g. metric_directions={{'mae': 'min'}}"
        ]
    problems = [
        f"metric {metric!r} has direction {direction!r}: use {_choices(DIRECTIONS)} "
        "('max' higher is better, 'min' lower is better, 'info' reported only)"
        f"{_did_you_mean(direction, DIRECTIONS)}"
        for metric, direction in directions.items()
        if direction not in DIRECTIONS
    ]
    primary = spec.primary_metric
    if primary not in directions:
        problems.append(
            f"primary_metric {primary!r} is not in metric_directions ({', '.join(map(repr, directions))}): "
            f"set primary_metric to one of them, or add {primary!r} with its direction"
            f"{_did_you_mean(primary, list(directions))}"
        )
    elif directions[primary] not in ("max", "min"):
        problems.append(
            f"primary_metric {primary!r} has direction {directions[primary]!r}, but model selection must compare "
            "it: give it 'max' or 'min', or choose another primary_metric"
        )
    return problems


def _check_callables(spec: TaskSpec) -> list[str]:
    problems = []
    for field in ("build_dataset", "metrics"):
        if not callable(getattr(spec, field)):
            problems.append(
                f"{field} is {_short(getattr(spec, field))}, not a callable: pass a function"
            )
    for field in ("build_head", "loss", "decode", "baselines", "calibrate", "predict", "configure"):
        value = getattr(spec, field)
        if value is not None and not callable(value):
            problems.append(
                f"{field} is {_short(value)}, not a callable: pass a function, or None for the default"
            )
    if spec.outputs is not None and (
        not isinstance(spec.outputs, int) or isinstance(spec.outputs, bool) or spec.outputs < 1
    ):
        problems.append(
            f"outputs {spec.outputs!r} must be a positive int (the head's width), or None for the kind's"
        )
    return problems + _check_priors(spec)


def _check_priors(spec: TaskSpec) -> list[str]:
    if not isinstance(spec.priors, Mapping):
        return [
            f"priors is {_short(spec.priors)}, not a mapping: write priors={{'name': Prior(...)}}"
        ]
    problems = []
    for name, prior in spec.priors.items():
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            problems.append(
                f"prior name {name!r} must be lowercase letters, digits and '_', starting with a letter (configs name it)"
            )
        elif not isinstance(prior, Prior) or not (callable(prior.fit) and callable(prior.predict)):
            problems.append(
                f"priors[{name!r}] is {_short(prior)}, not a Prior: write Prior(description=..., "
                "fit=fn(train, val), predict=fn(fitted, frame))"
            )
        elif prior.group is not None and prior.group not in spec.columns:
            problems.append(
                f"priors[{name!r}].group {prior.group!r} is not a column of the task: name one of "
                f"{list(spec.columns)} or None"
            )
    return problems


def _check_settings(spec: TaskSpec) -> list[str]:
    settings = spec.settings
    if settings is None:
        return []
    if not (isinstance(settings, type) and dataclasses.is_dataclass(settings)):
        return [
            f"settings is {_short(settings)}, not a dataclass type: pass the class itself (settings=MySettings)"
        ]
    missing = [
        f.name
        for f in dataclasses.fields(settings)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        return [
            f"settings {settings.__name__} has field(s) without a default ({', '.join(missing)}): "
            "give every field a default -- the defaults are the task's defaults when the config sets nothing"
        ]
    return []


# ------------------------------------------------------------------------ dry run
