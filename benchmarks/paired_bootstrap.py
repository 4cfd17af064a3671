#!/usr/bin/env python
"""Paired bootstrap of the test-split difference between trained runs and each task's best
classical peer: is the model better than what a data scientist already has?

Run from the repository root (the shopmtl virtualenv active)::

    python benchmarks/paired_bootstrap.py RUN_DIR [RUN_DIR ...] [--samples 2000] [--output FILE]

The RUN_DIRs are one model trained with different seeds (e.g. the 3 seeds of the quality
benchmark). For each built-in task it

1. scores the test split with every run (the run's own config and saved feature states:
   what ``shopmtl evaluate`` scores) and fits the task's best classical peer on the full
   train split (sales: the mean of lags; price_bin: TF-IDF + logistic regression;
   user_profile: TF-IDF + country logistic regression; recommend: gradient boosting);
2. draws ``--samples`` bootstrap resamples of the test split *by its first key* (products for
   sales and price_bin, customers for user_profile and recommend: rows of one product or
   customer are not independent), the same resamples for model and peer (paired);
3. reports, on the task's primary metric, the mean over the runs of ``model - peer``
   (sign flipped where lower is better, so > 0 means the model is better) on the full test
   split, and the 2.5/97.5 % percentiles of that difference over the resamples.

The metrics are the tasks' own ``metrics`` functions; recommend's AUC is read without its
ranking metrics (the resamples leave NDCG@10 to the quality table).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: task -> (the peer's name, its prior (``TaskSpec.priors``), raw outputs -> the model's predictions).
Peer = tuple[str, str, Callable[[np.ndarray], np.ndarray]]


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


#: The best classical peer of each built-in task (benchmarks/RESULTS.md): the task's prior of
#: that name, fitted on the full train split. A prior hands over the head's raw space (logits,
#: log probabilities); the inverse gives back the peer's probabilities, clipped to [1e-6, 1 - 1e-6].
PEERS: dict[str, Peer] = {
    "sales": ("mean of lags 1-4", "mean_of_lags", lambda raw: raw),
    "price_bin": ("TF-IDF + LR", "tfidf_logreg", np.exp),
    "user_profile": ("TF-IDF + country LR", "tfidf_country_logreg", _sigmoid),
    "recommend": ("gradient boosting", "gradient_boosting", _sigmoid),
}


def peer_predictions(spec: Any, prior: str, inverse: Callable, data: Any, frame: Any) -> np.ndarray:
    """The task's prior ``prior`` fitted on ``data``'s train split (val to choose its settings),
    predicting ``frame``, in the space of the model's predictions."""
    fitted = spec.priors[prior].fit(data["train"], data["val"])
    raw = np.asarray(spec.priors[prior].predict(fitted, frame), dtype=float)
    return inverse(raw)


def model_predictions(
    run_dirs: Sequence[Path], plugins: Any
) -> tuple[dict[str, list[np.ndarray]], dict[str, Any]]:
    """Each task's test predictions from every run, and one run's prepared tasks (frames, labels, calibration)."""
    from shopmtl.core import api

    predictions: dict[str, list[np.ndarray]] = {}
    batches: dict[str, Any] = {}
    for run_dir in run_dirs:
        run = api.load_run(run_dir, plugins.tasks)
        for name, batch in api.score_split(run, "test").items():
            predictions.setdefault(name, []).append(np.asarray(batch.predictions, dtype=float))
            batches.setdefault(name, batch)
    return predictions, batches


def metric(spec: Any, batch: Any, predictions: np.ndarray, rows: np.ndarray) -> float:
    """The task's primary metric on test rows ``rows`` (repeats allowed) of ``predictions``."""
    from shopmtl import EvalBatch

    resampled = EvalBatch(
        split="test",
        frame=batch.frame.iloc[rows].reset_index(drop=True),
        predictions=predictions[rows],
        labels=np.asarray(batch.labels)[rows],
        score=lambda frame: np.empty(0),
        extras={},
        calibration=batch.calibration,
    )
    return float(spec.metrics(resampled)[spec.primary_metric])


def cluster_resamples(keys: pd.Series, samples: int, seed: int) -> list[np.ndarray]:
    """Row positions of ``samples`` bootstrap resamples drawing whole clusters (equal keys) with replacement."""
    codes, uniques = pd.factorize(keys)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    members = [order[starts[k] : starts[k + 1]] for k in range(len(uniques))]
    rng = np.random.default_rng(seed)
    return [
        np.concatenate([members[k] for k in rng.integers(0, len(uniques), len(uniques))])
        for _ in range(samples)
    ]


def compare(
    task: str,
    spec: Any,
    batch: Any,
    runs: list[np.ndarray],
    peer: np.ndarray,
    samples: int,
    seed: int,
) -> dict[str, Any]:
    """Model minus peer on the full test split and its paired bootstrap 95 % interval (> 0: model better)."""
    sign = -1.0 if spec.metric_directions[spec.primary_metric] == "min" else 1.0
    peer = peer.reshape(len(peer), -1)
    everything = np.arange(len(peer))

    def difference(rows: np.ndarray) -> float:
        peer_value = metric(spec, batch, peer, rows)
        return float(np.mean([sign * (metric(spec, batch, p, rows) - peer_value) for p in runs]))

    draws = np.array(
        [difference(rows) for rows in cluster_resamples(batch.frame[spec.keys[0]], samples, seed)]
    )
    per_run, peer_value = (
        [metric(spec, batch, p, everything) for p in runs],
        metric(spec, batch, peer, everything),
    )
    return {
        "metric": spec.primary_metric,
        "model": float(np.mean(per_run)),
        "model_per_run": per_run,
        "peer": peer_value,
        "difference": float(np.mean([sign * (value - peer_value) for value in per_run])),
        "ci95": [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))],
        "share_model_better": float(np.mean(draws > 0)),
        "clusters": int(batch.frame[spec.keys[0]].nunique()),
        "rows": len(peer),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "runs", nargs="+", type=Path, help="run directories: one model, several seeds"
    )
    parser.add_argument(
        "--samples", type=int, default=2000, help="bootstrap resamples (default 2000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the resamples")
    parser.add_argument(
        "--output", type=Path, default=None, help="write the comparison as JSON here too"
    )
    args = parser.parse_args(argv)

    from shopmtl.core import api
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    plugins = api.load_plugins(only=[])
    predictions, batches = model_predictions(args.runs, plugins)
    config = api.read_run_config(args.runs[0])
    report: dict[str, Any] = {
        "runs": [str(r) for r in args.runs],
        "samples": args.samples,
        "tasks": {},
    }
    for task, (peer_name, prior, inverse) in PEERS.items():
        if task not in batches:
            continue
        spec = plugins.tasks[task]
        with threadpool_limits(1):
            # On the rows the runs scored (all of test, unless the run's config capped it).
            data = api.build_task_data(spec, config)
            peer = peer_predictions(spec, prior, inverse, data, batches[task].frame)
        result = compare(
            task, spec, batches[task], predictions[task], peer, args.samples, args.seed
        )
        report["tasks"][task] = {"peer": peer_name, **result}
        low, high = result["ci95"]
        print(
            f"{task:13s} {result['metric']:9s} model {result['model']:.4f} vs {peer_name} {result['peer']:.4f}: "
            f"difference {result['difference']:+.4f} (95 % CI {low:+.4f} .. {high:+.4f}; model better in "
            f"{100 * result['share_model_better']:.0f} % of resamples)",
            flush=True,
        )
    report["wall_s"] = time.perf_counter() - started
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
