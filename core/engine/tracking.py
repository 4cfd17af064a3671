"""What a run logs to accelerate's trackers (``training.log_with``) besides its curves.

The trainer logs training losses (``train/<task>/loss``) and validation metrics
(``val/<task>/<metric>``) as it goes, and the flattened config as the trackers'
hyper-parameters when it starts. At the end, :func:`log_final_metrics` adds the best
model's val and test metrics (``final/<split>/<task>/<metric>``), the tasks' baselines
(``baseline/test/<task>/<baseline>/<metric>``) and, for TensorBoard, the whole config
as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from accelerate import Accelerator
from shopmtl.core.config import Config


def _numbers(prefix: str, values: Mapping[str, Any]) -> dict[str, float]:
    return {
        f"{prefix}/{k}": float(v)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def final_values(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]],
    baselines: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> dict[str, float]:
    """``metrics`` (task -> split -> metric) and ``baselines`` (task -> baseline -> metric) as flat scalars."""
    values: dict[str, float] = {}
    for task, splits in metrics.items():
        for split, found in splits.items():
            values.update(_numbers(f"final/{split}/{task}", found))
    for task, named in baselines.items():
        for baseline, found in named.items():
            values.update(_numbers(f"baseline/test/{task}/{baseline}", found))
    return values


def log_final_metrics(
    accelerator: Accelerator,
    config: Config,
    metrics: Mapping[str, Any],
    baselines: Mapping[str, Any],
    step: int,
) -> None:
    """Log the final metrics, the baselines and the config to the run's trackers (if any)."""
    if not config.training.log_with or not accelerator.is_main_process:
        return
    accelerator.log(final_values(metrics, baselines), step=step)
    if "tensorboard" in config.training.log_with:
        writer = accelerator.get_tracker("tensorboard", unwrap=True)
        text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
        writer.add_text("config", "```yaml\n" + text + "```", global_step=step)
        writer.flush()
