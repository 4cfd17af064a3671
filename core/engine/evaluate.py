"""Evaluation and scoring: encode each distinct text once, then run the heads."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from accelerate.utils import gather_object
from shopmtl.core.data.features import EncodedRows, encode_rows
from shopmtl.core.data.prepare import PreparedTask
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.engine.runtime import Runtime
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.model.outputs import predict
from shopmtl.registry.derived import with_derived
from shopmtl.registry.spec import EvalBatch, MetricSpec

_HEAD_CHUNK = 8192  # rows per head call: heads are small, so large chunks are cheap
#: Rows :meth:`Scorer.score_frame` encodes at a time. A multiple of ``_HEAD_CHUNK``, so the heads see
#: the same chunks as when the frame is encoded whole: the predictions are the same, bit for bit.
_FRAME_CHUNKS = 16


class Scorer:
    """Predictions of one model state, with pooled text vectors cached by text id.

    The encoder is deterministic in eval mode, so a text needs encoding once per
    evaluation however many rows (weeks, candidates, tasks) use it. Build a new
    Scorer after the weights change.
    """

    def __init__(
        self, accelerator: Runtime, model: MultiTaskModel, bank: TextBank, batch_size: int
    ) -> None:
        self.accelerator = accelerator
        self.model = model
        self.bank = bank
        self.batch_size = batch_size
        self._cache: dict[str | None, dict[int, torch.Tensor]] = {}  # adapter -> text id -> vector
        self._shared: dict[
            str, dict[int, torch.Tensor]
        ] = {}  # task -> text id -> what its head reads

    @torch.no_grad()
    def _embed(self, ids: Iterable[int], task: str) -> dict[int, torch.Tensor]:
        """Pooled vectors of text ``ids`` as ``task`` sees them (its adapter, if it has its own)."""
        cache = self._cache.setdefault(self.model.encoder.adapter_for(task), {})
        todo = np.array(sorted(set(int(i) for i in ids) - cache.keys()), dtype=np.int64)
        if len(todo) == 0:
            return cache
        self.model.encoder.use_adapter(task)
        todo = todo[
            np.argsort(self.bank.lengths(todo), kind="stable")
        ]  # similar lengths pad little
        device = self.accelerator.device
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            input_ids, mask = self.bank.pad(chunk)
            with self.accelerator.autocast():
                pooled = self.model.encoder(input_ids.to(device), mask.to(device)).float()
            for text_id, vector in zip(chunk.tolist(), pooled):
                cache[text_id] = vector
        return cache

    @torch.no_grad()
    def _shared_vectors(self, ids: np.ndarray, task: str) -> torch.Tensor:
        """What ``task``'s head reads for text ``ids`` (sharing gates applied once per text, then cached)."""
        shared = self._shared.setdefault(task, {})
        todo = [int(i) for i in ids if int(i) not in shared]
        if todo:
            pooled = self._embed(todo, task)
            device = self.accelerator.device
            for start in range(0, len(todo), _HEAD_CHUNK):
                chunk = todo[start : start + _HEAD_CHUNK]
                with self.accelerator.autocast():
                    mixed = self.model.share(
                        task, torch.stack([pooled[i] for i in chunk]).to(device)
                    ).float()
                shared.update(zip(chunk, mixed))
        return torch.stack([shared[int(i)] for i in ids])

    @torch.no_grad()
    def predict_rows(
        self, task: PreparedTask, rows: EncodedRows, index: np.ndarray | None = None
    ) -> np.ndarray:
        """Predictions ``(n, n_predictions)`` for ``rows`` (or the subset ``index``)."""
        index = np.arange(len(rows)) if index is None else index
        out = np.zeros((len(index), task.spec.n_predictions), dtype=np.float32)
        if len(index) == 0:
            return out
        self.model.eval()
        device = self.accelerator.device
        for start in range(0, len(index), _HEAD_CHUNK):
            chunk = index[start : start + _HEAD_CHUNK]
            text_ids = rows.text_ids[chunk]
            pair_ids = rows.pair_ids[chunk] if rows.pair_ids is not None else None
            needed = np.unique(
                text_ids if pair_ids is None else np.concatenate([text_ids, pair_ids])
            )
            pooled = self._shared_vectors(needed, task.name)
            position = {int(t): k for k, t in enumerate(needed)}
            batch: dict[str, torch.Tensor] = {
                "text_pos": torch.tensor([position[int(t)] for t in text_ids]),
                "numeric": torch.from_numpy(rows.numeric[chunk]),
                "numeric_missing": torch.from_numpy(rows.numeric_missing[chunk]),
                "categorical": torch.from_numpy(rows.categorical[chunk]),
            }
            if rows.prior is not None:
                batch["prior"] = torch.from_numpy(rows.prior[chunk])
            if pair_ids is not None:
                batch["pair_pos"] = torch.tensor([position[int(t)] for t in pair_ids])
            if task.name in self.model.token_tasks:
                batch["tokens"] = self.bank.pad(needed)[0]
            batch = {k: v.to(device) for k, v in batch.items()}
            # The heads run in float32 whatever the run's precision: they are small, and a bf16
            # head would round the predictions themselves (5.5625 for 5.586).
            raw = self.model.apply_head(task.name, pooled.to(device).float(), batch, shared=True)
            out[start : start + len(chunk)] = predict(task.spec, raw.float()).cpu().numpy()
        return out

    def predict_sharded(self, task: PreparedTask, rows: EncodedRows) -> np.ndarray:
        """Like :meth:`predict_rows`, each process taking a contiguous share, gathered in order."""
        world = self.accelerator.num_processes
        if world == 1:
            return self.predict_rows(task, rows)
        shares = np.array_split(np.arange(len(rows)), world)
        mine = self.predict_rows(task, rows, shares[self.accelerator.process_index])
        return np.concatenate(gather_object([mine]), axis=0)

    def score_frame(self, task: PreparedTask, frame: pd.DataFrame) -> np.ndarray:
        """Predictions for arbitrary rows with the task's columns (labels not needed); see :meth:`score_frames`."""
        return self.score_frames(task, [frame])

    def score_frames(self, task: PreparedTask, frames: Iterable[pd.DataFrame]) -> np.ndarray:
        """Predictions for the rows of ``frames``, in order: those of their concatenation, bit for bit.

        The rows are encoded and scored ``_FRAME_CHUNKS * _HEAD_CHUNK`` at a time, cut from the
        frames as they come, so neither a large frame nor the whole stream (recommend's ranking
        candidates, 100 per positive) ever exists as arrays at once. Derived features are
        computed frame by frame.
        """
        spec, size = task.spec, _FRAME_CHUNKS * _HEAD_CHUNK
        parts: list[np.ndarray] = []
        pending: list[pd.DataFrame] = []
        for frame in frames:
            if spec.derive is not None and any(c not in frame.columns for c in spec.derive.columns):
                frame = with_derived(
                    spec, frame
                )  # on each whole frame: a derived feature may look across rows
            pending.append(frame)
            while (
                sum(len(f) for f in pending) >= size
            ):  # cut a full chunk: the same chunks as one frame gives
                rows = pd.concat(pending) if len(pending) > 1 else pending[0]
                parts.append(self._score_rows(task, rows.iloc[:size]))
                pending = [rows.iloc[size:]]
        rest = [f for f in pending if len(f)]
        if rest or not parts:
            parts.append(
                self._score_rows(task, pd.concat(rest) if len(rest) > 1 else (rest or [None])[0])
            )
        return np.concatenate(parts, axis=0)

    def _score_rows(self, task: PreparedTask, rows: pd.DataFrame | None) -> np.ndarray:
        if rows is None:  # nothing to score: an empty result of the right width
            return np.zeros((0, task.spec.n_predictions), dtype=np.float32)
        return self.predict_rows(task, encode_rows(task.spec, rows, task.state, self.bank))


def eval_batches(
    scorer: Scorer,
    tasks: Mapping[str, PreparedTask],
    split: str,
    calibration: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[tuple[str, EvalBatch]]:
    """Each task's :class:`EvalBatch` for ``split``, predictions gathered across processes."""
    for name, task in tasks.items():
        rows = task.rows[split]
        yield (
            name,
            EvalBatch(
                split=split,
                frame=task.data[split],
                predictions=scorer.predict_sharded(task, rows),
                labels=rows.labels,
                score=lambda frame, task=task: scorer.score_frame(task, frame),
                score_stream=lambda frames, task=task: scorer.score_frames(task, frames),
                extras=task.data.extras,
                calibration=(calibration or {}).get(name, {}),
            ),
        )


def evaluate(
    accelerator: Runtime,
    model: MultiTaskModel,
    bank: TextBank,
    tasks: Mapping[str, PreparedTask],
    split: str,
    batch_size: int,
    extra_metrics: Sequence[MetricSpec] = (),
    calibration: Mapping[str, Mapping[str, Any]] | None = None,
    scorer: Scorer | None = None,
) -> dict[str, dict[str, Any]]:
    """``{task: {metric: value}}`` on ``split``, identical on every process.

    ``extra_metrics`` are metrics plugins added to tasks (``register_metrics``);
    ``calibration`` is what tasks' ``calibrate`` fitted (see :func:`calibrate`).
    ``scorer``: reuse one whose model state is the current one (its cached text vectors
    carry over, e.g. from calibration to val to test); default: a fresh one.
    """
    scorer = scorer or Scorer(accelerator, model, bank, batch_size)
    results: dict[str, dict[str, Any]] = {}
    for name, batch in eval_batches(scorer, tasks, split, calibration):
        values = dict(tasks[name].spec.metrics(batch))
        values.update({m.name: m.compute(batch) for m in extra_metrics if m.task == name})
        results[name] = to_plain(values)
    model.train()
    return results


def calibrate(
    accelerator: Runtime,
    model: MultiTaskModel,
    bank: TextBank,
    tasks: Mapping[str, PreparedTask],
    batch_size: int,
    scorer: Scorer | None = None,
) -> dict[str, dict[str, Any]]:
    """Run each task's ``calibrate`` on the validation split; ``{task: calibration}``
    (``scorer`` as in :func:`evaluate`)."""
    wanted = {name: task for name, task in tasks.items() if task.spec.calibrate is not None}
    scorer = scorer or Scorer(accelerator, model, bank, batch_size)
    fitted = {
        name: to_plain(dict(wanted[name].spec.calibrate(batch)))
        for name, batch in eval_batches(scorer, wanted, "val")
    }
    model.train()
    return fitted


def final_scores(
    accelerator: Runtime,
    model: MultiTaskModel,
    bank: TextBank,
    tasks: Mapping[str, PreparedTask],
    batch_size: int,
    extra_metrics: Sequence[MetricSpec] = (),
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    """The final model's ``(calibration, {split: metrics})``: calibrated on val, then scored on val and test.

    The weights are fixed from here on, so one Scorer encodes each text once for
    calibration, val and test together (val's texts and the products every split shares).
    """
    scorer = Scorer(accelerator, model, bank, batch_size)
    calibration = calibrate(accelerator, model, bank, tasks, batch_size, scorer)
    metrics = {
        split: evaluate(
            accelerator, model, bank, tasks, split, batch_size, extra_metrics, calibration, scorer
        )
        for split in ("val", "test")
    }
    return calibration, metrics


def task_baselines(task: PreparedTask, split: str) -> dict[str, dict[str, Any]]:
    """The task's own baselines on ``split`` (none if it declares none)."""
    if task.spec.baselines is None:
        return {}
    return to_plain(dict(task.spec.baselines(task.with_train_frame(), split)))


def to_plain(value: Any) -> Any:
    """Metrics as JSON-ready Python values (NaN becomes None)."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) else float(value)
    return value


def selection_score(
    metrics: Mapping[str, Mapping[str, Any]],
    tasks: Mapping[str, PreparedTask],
    chosen: Mapping[str, str],
) -> float:
    """The aggregate early stopping watches: mean of each task's selection metric, higher is better."""
    scores = []
    for name, task in tasks.items():
        metric = chosen.get(name, task.spec.primary_metric)
        value = metrics[name].get(metric)
        if value is None:
            continue
        sign = -1.0 if task.spec.metric_directions.get(metric) == "min" else 1.0  # higher is better
        scores.append(sign * float(value))
    return float(np.mean(scores)) if scores else float("-inf")
