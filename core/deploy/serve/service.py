"""A loaded run behind the HTTP server: what it can predict, and batches of requests."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from shopmtl.core.deploy.bank import bounded_bank
from shopmtl.core.deploy.serve.batcher import Job
from shopmtl.core.deploy.serve.schemas import input_columns
from shopmtl.core.engine.evaluate import Scorer
from shopmtl.core.engine.predict import LoadedRun, predict_frame

log = logging.getLogger(__name__)

ScorerFactory = Callable[[LoadedRun], Scorer]


def weights_sha256(model_dir: Path, tasks: Sequence[str]) -> str:
    """sha256 over the weight files that serve ``tasks`` (encoder, sharing, their heads), in a fixed order."""
    files = [
        model_dir / "encoder.safetensors",
        model_dir / "sharing.safetensors",
        *(model_dir / "heads" / f"{t}.safetensors" for t in sorted(tasks)),
    ]
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: numpy scalars as Python ones, NaN as ``None``."""
    plain = frame.astype(object).where(frame.notna(), None)
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in plain.to_dict(orient="records")
    ]


class ModelService:
    """Predicts the tasks of one loaded run; built once, before the server starts."""

    def __init__(
        self, run: LoadedRun, tasks: Sequence[str] = (), scorer: ScorerFactory | None = None
    ) -> None:
        self.run = run
        self.tasks = [run.task(t).name for t in tasks] if tasks else list(run.specs)
        self.sha256 = weights_sha256(run.run_dir / "model", self.tasks)
        self.model_id = f"{run.config.run_name}-{self.sha256[:12]}"
        self._scorer = scorer
        self.description = self._describe()

    def _describe(self) -> dict[str, Any]:
        """Each task's inputs, outputs and labels, and the model id (``GET /v1/tasks``)."""
        tasks = []
        for name in self.tasks:
            spec = self.run.specs[name]
            outputs = self._outputs(name)
            tasks.append(
                {
                    "name": name,
                    "kind": spec.kind,
                    "description": spec.description,
                    "inputs": {
                        "text": [c for c in (spec.text, spec.text_pair) if c],
                        "numeric": list(spec.numeric),
                        "categorical": list(spec.categorical),
                        "derived": list(spec.derive.columns) if spec.derive else [],
                    },
                    "outputs": outputs,
                    "labels": list(spec.labels),
                    "classes": list(spec.classes),
                }
            )
        return {
            "model": {"id": self.model_id, "run": self.run.config.run_name, "sha256": self.sha256},
            "tasks": tasks,
        }

    def _outputs(self, task: str) -> list[str] | None:
        """The prediction columns of ``task``, from a prediction on no rows (``None`` if that fails)."""
        empty = pd.DataFrame(
            {c: pd.Series(dtype=object) for c in input_columns(self.run.specs[task])}
        )
        try:
            return list(self.predict(task, empty).columns)
        except Exception as exc:  # noqa: BLE001 -- a plugin's decode that breaks the contract; not fatal
            log.warning(  # in words, no traceback: `plugins check` names the fix
                "task %s: cannot list its output columns: predicting no rows raised %s: %s "
                "(decode must take zero rows; `shopmtl plugins check` says how to fix it)",
                task,
                type(exc).__name__,
                exc,
            )
            return None

    def predict(self, task: str, frame: pd.DataFrame, scorer: Scorer | None = None) -> pd.DataFrame:
        """Only the prediction columns of ``task`` for ``frame``."""
        predicted = predict_frame(self.run, task, frame, source="the request", scorer=scorer)
        return predicted.iloc[:, len(frame.columns) :]

    def predict_batch(self, jobs: Sequence[Job]) -> list[pd.DataFrame | Exception]:
        """Every job's prediction columns, each distinct text of the batch encoded once.

        If the batch fails as a whole, each job runs alone, so one bad request fails alone.
        """
        bounded_bank(self.run)
        try:
            return list(self._together(jobs))
        except Exception:  # noqa: BLE001 -- find which job it was
            return [self._alone(job) for job in jobs]

    def _new_scorer(self) -> Scorer:
        run = self.run
        if self._scorer is not None:
            return self._scorer(run)
        return Scorer(run.accelerator, run.model, run.bank, run.config.training.eval_batch_size)

    def _together(self, jobs: Sequence[Job]) -> list[pd.DataFrame]:
        scorer = self._new_scorer()
        columns: list[list[pd.DataFrame]] = [[] for _ in jobs]
        for task in dict.fromkeys(t for job in jobs for t in job.tasks):
            mine = [k for k, job in enumerate(jobs) if task in job.tasks]
            frame = pd.concat([jobs[k].frame for k in mine], ignore_index=True)
            predicted = self.predict(task, frame, scorer)
            start = 0
            for k in mine:
                part = predicted.iloc[start : start + len(jobs[k].frame)].reset_index(drop=True)
                start += len(jobs[k].frame)
                columns[k].append(part if len(jobs[k].tasks) == 1 else part.add_prefix(f"{task}."))
        return [pd.concat(parts, axis=1) for parts in columns]

    def _alone(self, job: Job) -> pd.DataFrame | Exception:
        try:
            return self._together([job])[0]
        except Exception as error:  # noqa: BLE001 -- reported to that request's client
            return error
