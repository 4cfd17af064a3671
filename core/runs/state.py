"""The trainer's progress, and the resumable checkpoint that holds it (``checkpoints/last``).

``--resume`` restores weights, optimiser, learning-rate schedule, sampler cursor and
:class:`TrainState` from there, so a resumed run replays exactly what an uninterrupted
one would have done.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from shopmtl.core.data.features import FeatureState
from shopmtl.core.files import atomic_dir
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.mtl.sampler import TaskSampler
from shopmtl.core.runs import checkpoint, manifest


@dataclass
class TrainState:
    """Where training stands: saved with every checkpoint (``trainer_state.json``)."""

    step: int = 0  # optimiser steps taken
    best_score: float = -math.inf  # the best validation score so far (higher is better)
    best_step: int = 0  # the step that score was reached at: the model in <run>/model
    bad_evals: int = 0  # validations in a row without improvement (early stopping counts them)
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per validation

    def record(self, score: float, entry: dict[str, Any]) -> bool:
        """Count one validation (``entry``: its step, score, metrics, losses); True if it is the best so far."""
        improved = score > self.best_score or not self.history  # the first one always counts
        if improved:
            self.best_score, self.best_step, self.bad_evals = score, self.step, 0
        else:
            self.bad_evals += 1
        self.history.append(entry)
        return improved


def save_checkpoint(folder: Path, model: MultiTaskModel, features: Mapping[str, FeatureState], tokenizer: Any,
                    optimizer: torch.optim.Optimizer, state: TrainState, sampler: TaskSampler,
                    scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """Write a resumable checkpoint into ``folder`` atomically: the model files plus what resuming needs."""
    with atomic_dir(folder) as staging:
        checkpoint.write_model_files(staging, model, features, tokenizer)
        checkpoint.save_optimizer(staging / "optimizer", optimizer)
        checkpoint.write_json(staging / "trainer_state.json",
                              {**asdict(state), "sampler": sampler.state_dict(), "scheduler": scheduler.state_dict()})
        manifest.write_manifest(staging)


def load_checkpoint(folder: Path, model: MultiTaskModel, optimizer: torch.optim.Optimizer, sampler: TaskSampler,
                    scheduler: torch.optim.lr_scheduler.LRScheduler) -> TrainState:
    """Restore what :func:`save_checkpoint` wrote into the run's objects; returns the trainer's state."""
    manifest.verify(folder)  # every file listed, unchanged, nothing added
    checkpoint.load_weights(folder, model)
    checkpoint.load_optimizer(folder / "optimizer", optimizer)
    saved = checkpoint.read_json(folder / "trainer_state.json")
    sampler.load_state_dict(saved["sampler"])
    scheduler.load_state_dict(saved["scheduler"])
    return TrainState(**{name: saved[name] for name in TrainState.__dataclass_fields__})
