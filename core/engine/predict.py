"""Load a trained run and use it: predict on new rows, re-evaluate a split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from shopmtl.core.config import Config, TaskConfig
from shopmtl.core.data.features import FeatureState, encode_rows, missing_columns
from shopmtl.core.data.prepare import PreparedTask, prepare_task
from shopmtl.core.data.task_config import configure_task, head_spec_for
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.engine.evaluate import Scorer, evaluate
from shopmtl.core.engine.hardware import precision_for_this_machine
from shopmtl.core.engine.runtime import Runtime, inference_device
from shopmtl.core.model.encoder import build_encoder, load_saved_tokenizer
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.model.outputs import default_decode
from shopmtl.core.runs import checkpoint, manifest
from shopmtl.core.runs.assemble import assemble_model
from shopmtl.registry.spec import HeadSpec, MetricSpec, SharingFactory, TaskData, TaskSpec


class RunError(ValueError):
    """A run directory is missing, incomplete, or needs a plugin that is not installed."""


@dataclass
class LoadedRun:
    """A trained model ready to use, with everything needed to transform new rows."""

    run_dir: Path
    config: Config
    specs: dict[str, TaskSpec]
    features: dict[str, FeatureState]
    model: MultiTaskModel
    bank: TextBank
    accelerator: Runtime  # an InferenceDevice: a device and autocast, no accelerate state
    calibration: dict[str, Any]

    def task(self, name: str) -> TaskSpec:
        if name not in self.specs:
            raise RunError(
                f"the run in {self.run_dir} has no task '{name}'; it has: {', '.join(self.specs)}"
            )
        return self.specs[name]


def read_tasks(
    run_dir: Path,
    config: Config,
    folder: Path,
    registered: Mapping[str, TaskSpec],
    available: Sequence[str],
    *,
    tasks: Sequence[str] = (),
    allow_pickle: bool = False,
) -> tuple[dict[str, TaskSpec], dict[str, FeatureState]]:
    """The task specs (head and loss as trained) and saved feature states of the model
    ``folder``'s tasks among ``available`` (only ``tasks`` when given), or a clear error
    naming a task the run lacks or the plugins that are not installed.

    Loads no weights: the ONNX engine reads an export's tasks through here too.
    """
    saved = checkpoint.feature_tasks(folder)  # names checked: they name the priors' files
    names = [name for name in available if name in saved]
    unknown = [name for name in tasks if name not in names]
    if unknown:
        raise RunError(
            f"the run in {run_dir} has no task '{unknown[0]}'; it has: {', '.join(names)}"
        )
    names = list(dict.fromkeys(tasks)) or names
    missing = [name for name in names if name not in registered]
    if missing:
        owners = _owners(run_dir)
        needs = ", ".join(f"{t} (plugin {owners.get(t, '?')})" for t in missing)
        raise RunError(
            f"{run_dir} was trained with tasks that no installed plugin provides: {needs}; install those plugins"
        )
    specs = {name: configure_task(registered[name], config) for name in names}
    features = checkpoint.read_features(folder, specs, allow_pickle=allow_pickle)
    return specs, features


def load_run(
    run_dir: str | Path,
    registered: dict[str, TaskSpec],
    sharing_kinds: Mapping[str, SharingFactory] | None = None,
    precision: str = "auto",
    *,
    tasks: Sequence[str] = (),
    allow_pickle: bool = False,
) -> LoadedRun:
    """Rebuild a run's model from its folder: config, backbone config, safetensors weights.

    :param registered: the installed tasks (``PluginSet.tasks``); the run's must be among them.
    :param sharing_kinds: the registered sharing kinds, when the run used a plugin's
        (default: shopmtl's own).
    :param precision: autocast for inference on *this* machine (``auto``: bf16 where the
        hardware has it natively, fp32 elsewhere), independent of what the run trained in.
    :param tasks: load only these tasks' heads, feature states and priors (default: all);
        another task's prior is never opened.
    :param allow_pickle: open a prior an older shopmtl pickled (UNSAFE: runs code from the
        file); without it such a run is refused with one line naming the file.
    """
    run_dir = Path(run_dir)
    try:
        folder = checkpoint.source_model_dir(run_dir)
    except FileNotFoundError as error:
        raise RunError(str(error)) from None
    config = checkpoint.read_run_config(run_dir)
    # The tasks are the heads on disk (every one listed in the run's manifest); with
    # ``tasks``, only those heads, feature states and priors are opened.
    heads = sorted(manifest.task_name(p.stem, p) for p in (folder / "heads").glob("*.safetensors"))
    specs, features = read_tasks(
        run_dir, config, folder, registered, heads, tasks=tasks, allow_pickle=allow_pickle
    )
    encoder = build_encoder(
        config.encoder, saved=folder / "backbone", tasks=checkpoint.saved_adapters(folder)
    )
    tokenizer = load_saved_tokenizer(folder / "backbone")
    bank = TextBank(tokenizer, config.encoder.max_length)

    def head_spec(name: str, width: int) -> HeadSpec:
        return head_spec_for(
            specs[name], features[name], config.tasks.get(name, TaskConfig()), width, bank
        )

    model = assemble_model(config, encoder, specs, head_spec, sharing_kinds)
    checkpoint.load_weights(folder, model, list(specs))
    model.eval()
    choice = precision_for_this_machine(precision, setting="--precision")
    accelerator = inference_device(choice.precision)
    model = model.to(accelerator.device)
    return LoadedRun(
        run_dir,
        config,
        specs,
        features,
        model,
        bank,
        accelerator,
        checkpoint.read_calibration(folder, list(specs)),
    )


def _owners(run_dir: Path) -> dict[str, Any]:
    """Which plugin each task of the run came from (``plugins.json``), for messages only."""
    path = run_dir / "plugins.json"
    data = checkpoint.read_json(path) if path.is_file() else {}
    owners = data.get("tasks", {}) if isinstance(data, dict) else {}
    return {str(k): v for k, v in owners.items()} if isinstance(owners, dict) else {}


def _prepared(run: LoadedRun, name: str, data: TaskData | None = None) -> PreparedTask:
    empty = TaskData(splits={})
    return PreparedTask(
        spec=run.specs[name],
        config=run.config.tasks.get(name),
        data=data or empty,
        state=run.features[name],
        rows={},
    )


def predict_frame(
    run: LoadedRun,
    task: str,
    frame: pd.DataFrame,
    source: str = "input",
    scorer: Scorer | None = None,
) -> pd.DataFrame:
    """``frame``'s columns followed by the task's prediction columns.

    ``scorer``: share one between calls on the same run (:func:`predict_tasks`), so a text
    several tasks read is encoded once.
    """
    spec = run.task(task)
    # Keys identify rows; they are not model inputs, so a file to score need not hold them.
    missing = [c for c in missing_columns(spec, frame, with_labels=False) if c not in spec.keys]
    # A numeric input may be missing on any row (the model reads a missing flag): a column
    # absent altogether is missing on every row, not an error.
    absent_numbers = [c for c in missing if c in spec.numeric]
    inputs = frame.assign(**dict.fromkeys(absent_numbers, float("nan")))
    missing = [c for c in missing if c not in absent_numbers]
    if missing:
        raise RunError(
            f"{source} lacks columns {missing} that task '{task}' needs "
            f"(all of: {', '.join(c for c in spec.columns if c not in (*spec.labels, *spec.keys))}); "
            f"`shopmtl data {task} --output FILE` shows the expected layout"
        )
    rows = encode_rows(spec, inputs, run.features[task], run.bank)
    scorer = scorer or Scorer(
        run.accelerator, run.model, run.bank, run.config.training.eval_batch_size
    )
    predictions = scorer.predict_rows(_prepared(run, task), rows)
    if spec.decode is None:
        decoded = default_decode(spec)(predictions)
    elif spec.calibrate is not None:
        decoded = spec.decode(predictions, run.calibration.get(task, {}))
    else:
        decoded = spec.decode(predictions)
    decoded.index = frame.index
    clashes = [c for c in decoded.columns if c in frame.columns]
    return pd.concat(
        [frame, decoded.rename(columns={c: f"{c}_predicted" for c in clashes})], axis=1
    )


def predict_tasks(
    run: LoadedRun,
    tasks: Sequence[str],
    frame: pd.DataFrame,
    source: str = "input",
    scorer: Scorer | None = None,
) -> pd.DataFrame:
    """``frame``'s columns followed by each task's prediction columns, named ``<task>.<column>``.

    One encoder pass serves every task: each distinct text of the frame (a product
    description that ``sales`` and ``price_bin`` both read) is encoded once. ``scorer``:
    another engine's (``shopmtl.core.deploy.onnx_engine``); default: the run's model.
    """
    if len(tasks) == 1:
        return predict_frame(run, tasks[0], frame, source, scorer)
    scorer = scorer or Scorer(
        run.accelerator, run.model, run.bank, run.config.training.eval_batch_size
    )
    parts = [frame]
    for task in tasks:
        predicted = predict_frame(run, task, frame, source, scorer)
        parts.append(predicted.iloc[:, len(frame.columns) :].add_prefix(f"{task}."))
    return pd.concat(parts, axis=1)


def evaluate_run(
    run: LoadedRun, split: str, extra_metrics: Sequence[MetricSpec] = ()
) -> dict[str, dict[str, Any]]:
    """Rebuild each task's data with the run's settings and saved feature states; evaluate."""
    tasks = {
        name: prepare_task(spec, run.config, run.bank, state=run.features[name])
        for name, spec in run.specs.items()
    }
    return evaluate(
        run.accelerator,
        run.model,
        run.bank,
        tasks,
        split,
        run.config.training.eval_batch_size,
        extra_metrics,
        run.calibration,
    )
