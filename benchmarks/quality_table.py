"""The quality benchmark's table: mean +- std over seeds, multi-task gains, and its markdown.

:mod:`quality` (``benchmarks/quality.py``) trains the models and hands the finished runs to
:func:`aggregate`; :func:`markdown` renders the report it writes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

TASKS: tuple[str, ...] = ("sales", "price_bin", "user_profile", "recommend")

#: The table's metric columns: (task, metric, header). Lower is better where the task says "min".
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("sales", "rmse", "sales RMSE"),
    ("sales", "mae", "sales MAE"),
    ("sales", "mae_units", "sales MAE units"),
    ("sales", "r2", "sales R²"),
    ("price_bin", "accuracy", "price_bin acc"),
    ("price_bin", "macro_f1", "price_bin macro-F1"),
    ("user_profile", "micro_f1", "user_profile micro-F1"),
    ("user_profile", "macro_f1", "user_profile macro-F1"),
    ("user_profile", "micro_f1_at_05", "user_profile micro-F1@0.5"),
    ("user_profile", "macro_f1_at_05", "user_profile macro-F1@0.5"),
    ("user_profile", "map", "user_profile mAP"),
    ("recommend", "auc", "recommend AUC"),
    ("recommend", "log_loss", "recommend log loss"),
    ("recommend", "hit_rate_at_10", "recommend HR@10"),
    ("recommend", "ndcg_at_10", "recommend NDCG@10"),
)
LOWER_IS_BETTER = {
    ("sales", "rmse"),
    ("sales", "mae"),
    ("sales", "mae_units"),
    ("recommend", "log_loss"),
}
#: Display names of the plugins' baselines.
BASELINE_NAMES = {
    "lag_1": "lag-1",
    "mean_lags_1_4": "mean of lags 1–4",
    "gradient_boosting": "gradient boosting",
    "majority": "majority class",
    "tfidf_logreg": "TF-IDF + LR",
    "train_label_prior": "train label prior",
    "seen_in_history": "seen in own history",
    "tfidf_country_logreg": "TF-IDF + country LR",
    "popularity": "popularity",
    "bought_before": "bought before",
}
#: Delta_MTL compares each task's primary metric (the one model selection uses).
PRIMARY = {"sales": "rmse", "price_bin": "macro_f1", "user_profile": "map", "recommend": "auc"}


# --------------------------------------------------------------------------- aggregation


def mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    got = [
        float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))
    ]
    if not got:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": statistics.fmean(got),
        "std": statistics.stdev(got) if len(got) > 1 else 0.0,
        "n": len(got),
    }


def relative_gain(task: str, value: float | None, single: float | None) -> float | None:
    """Maninis et al.'s relative improvement of one task, in %, sign-corrected."""
    if value is None or single is None or single == 0:
        return None
    sign = -1.0 if (task, PRIMARY[task]) in LOWER_IS_BETTER else 1.0
    return 100.0 * sign * (value - single) / abs(single)


def aggregate(
    baselines: Mapping[str, Any],
    runs: Mapping[str, Any],
    variants: Sequence[Any],
    seeds: Sequence[int],
) -> dict[str, Any]:
    """Rows of the table: metric -> mean/std, plus per-variant gains and costs."""
    rows = baseline_rows(baselines)
    single = single_task_row(runs, seeds)
    if single:
        rows.append(single)
    for variant in variants:
        row = variant_row(variant, runs, seeds)
        if row:
            rows.append(row)
    return {"rows": rows}


def test_value(run: Mapping[str, Any], task: str, metric: str) -> float | None:
    return run["metrics"].get(task, {}).get("test", {}).get(metric)


def baseline_rows(baselines: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per task's baseline, with its metrics (deterministic: no spread)."""
    rows: list[dict[str, Any]] = []
    for task in TASKS:
        for name, metrics in baselines.get(task, {}).items():
            label = BASELINE_NAMES.get(name, name.replace("_", " "))
            rows.append(
                {
                    "group": "baseline",
                    "name": f"{task}: {label}",
                    "key": f"baseline/{task}/{name}",
                    "metrics": {
                        f"{task}/{m}": mean_std([v]) for m, v in metrics.items() if _scalar(v)
                    },
                }
            )
    return rows


def single_task_row(runs: Mapping[str, Any], seeds: Sequence[int]) -> dict[str, Any] | None:
    """The single-task models' row: their metrics, and their summed parameters and times."""
    single_runs = {task: [runs.get(("single", task, s)) for s in seeds] for task in TASKS}
    if any(r for rs in single_runs.values() for r in rs):
        metrics = {}
        for task in TASKS:
            done = [r for r in single_runs[task] if r]
            for metric in _metric_names(done, task):
                metrics[f"{task}/{metric}"] = mean_std([test_value(r, task, metric) for r in done])
        cost = [[r for r in (single_runs[t][i] for t in TASKS) if r] for i in range(len(seeds))]
        return {
            "group": "single-task",
            "name": "single-task fine-tuning (one model per task)",
            "key": "single",
            "metrics": metrics,
            "parameters": _sum_params(cost[0]) if cost and cost[0] else None,
            "peak_rss_mib": mean_std([max(r["peak_rss_mib"] for r in c) for c in cost if c]),
            "rss_growth_mib": mean_std(
                [max(r["peak_rss_mib"] - r["rss_before_mib"] for r in c) for c in cost if c]
            ),
            "peak_gpu_mib": mean_std([max((r["peak_gpu_mib"] or 0) for r in c) for c in cost if c]),
            "wall_s": mean_std([sum(r["wall_s"] for r in c) for c in cost if c]),
        }
    return None


def variant_gains(
    done: Sequence[Mapping[str, Any] | None], runs: Mapping[str, Any], seeds: Sequence[int]
) -> tuple[dict[str, list[float]], list[float]]:
    """Each task's gain over its single-task model per seed, and Δ_MTL per seed."""
    gains: dict[str, list[float]] = {task: [] for task in TASKS}
    overall: list[float] = []
    for run, seed in zip(done, seeds):
        if not run:
            continue
        per_task = {}
        for task in TASKS:
            single = runs.get(("single", task, seed))
            gain = relative_gain(
                task,
                test_value(run, task, PRIMARY[task]),
                test_value(single, task, PRIMARY[task]) if single else None,
            )
            if gain is not None:
                gains[task].append(gain)
                per_task[task] = gain
        if len(per_task) == len(TASKS):
            overall.append(statistics.fmean(per_task.values()))
    return gains, overall


def variant_row(variant: Any, runs: Mapping[str, Any], seeds: Sequence[int]) -> dict | None:
    """One joint variant's row: metrics over its seeds, gains, parameters, memory, time."""
    done = [runs.get(("joint", variant.name, s)) for s in seeds]
    if not any(done):
        return None
    metrics = {}
    for task in TASKS:
        for metric in _metric_names([r for r in done if r], task):
            metrics[f"{task}/{metric}"] = mean_std([test_value(r, task, metric) for r in done if r])
    gains, overall = variant_gains(done, runs, seeds)
    first = next(r for r in done if r)
    return {
        "group": "multi-task",
        "name": variant.label,
        "key": f"joint/{variant.name}",
        "metrics": metrics,
        "gain_pct": {task: mean_std(g) for task, g in gains.items()},
        "delta_mtl_pct": mean_std(overall),
        "parameters": first["parameters"],
        "peak_rss_mib": mean_std([r["peak_rss_mib"] for r in done if r]),
        "rss_growth_mib": mean_std([r["peak_rss_mib"] - r["rss_before_mib"] for r in done if r]),
        "peak_gpu_mib": mean_std(
            [r["peak_gpu_mib"] for r in done if r and r["peak_gpu_mib"] is not None]
        ),
        "wall_s": mean_std([r["wall_s"] for r in done if r]),
    }


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (int, float))


def _metric_names(runs: Sequence[Mapping[str, Any]], task: str) -> list[str]:
    names: list[str] = []
    for run in runs:
        for metric, value in run["metrics"].get(task, {}).get("test", {}).items():
            if metric not in names and _scalar(value):
                names.append(metric)
    return names


def _sum_params(runs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    keys = ("trainable", "total", "encoder_trainable")
    return {k: sum(r["parameters"].get(k, 0) for r in runs) for k in keys}


# --------------------------------------------------------------------------- markdown


def fmt(stat: Mapping[str, Any] | None, show_std: bool) -> str:
    if not stat or stat.get("mean") is None:
        return "—"
    mean, std = stat["mean"], stat["std"]
    digits = 1 if abs(mean) >= 100 else 2 if abs(mean) >= 10 else 3
    return (
        f"{mean:.{digits}f} ± {std:.{digits}f}"
        if show_std and stat["n"] > 1
        else f"{mean:.{digits}f}"
    )


def percent(stat: Mapping[str, Any] | None, show_std: bool) -> str:
    if not stat or stat.get("mean") is None:
        return "—"
    return (
        f"{stat['mean']:+.1f} ± {stat['std']:.1f}"
        if show_std and stat["n"] > 1
        else f"{stat['mean']:+.1f}"
    )


def whole(stat: Mapping[str, Any] | None) -> str:
    return "—" if not stat or stat.get("mean") is None else f"{stat['mean']:,.0f}"


def count(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def markdown(report: Mapping[str, Any]) -> str:
    """The report as markdown: the metrics table, then the multi-task gain and cost table."""
    return "\n".join(metrics_table(report) + gain_table(report))


def metrics_table(report: Mapping[str, Any]) -> list[str]:
    """The title, how the figures were made, and one row of test metrics per method."""
    rows = report["table"]["rows"]
    n_seeds = len(report["seeds"])
    lines = [
        f"# shopmtl quality benchmark — profile `{report['profile']}`",
        "",
        f"{report['profile_description']}. Seeds: {', '.join(map(str, report['seeds']))}; "
        f"test split; mean ± std over seeds (sample std) for the trained models; baselines are "
        f"deterministic, fitted once on the full train split. Device: {report['environment']['device']}. "
        f"Generated {report['generated']} by `benchmarks/quality.py` "
        + (
            f"from finished runs (`--report-only`); the runs' wall times sum to {report['runs_wall_s'] / 60:.0f} min."
            if report.get("report_only")
            else f"in {report['total_wall_s'] / 60:.1f} min."
        ),
        "",
        "↓ lower is better. user_profile: the models' micro/macro-F1 use per-label thresholds "
        "calibrated on val; `@0.5` are TASKS.md's fixed-threshold F1s (the baselines' only ones).",
        "",
    ]
    headers = ["method"] + [h + (" ↓" if (t, m) in LOWER_IS_BETTER else "") for t, m, h in COLUMNS]
    lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        seeds_of_row = max((stat.get("n", 0) for stat in row["metrics"].values()), default=0)
        name = row["name"] + (
            f" ({seeds_of_row} seed{'s' if seeds_of_row > 1 else ''})"
            if row["group"] != "baseline" and 0 < seeds_of_row < n_seeds
            else ""
        )
        cells = [("**" + name + "**") if row["group"] != "baseline" else name]
        for task, metric, _ in COLUMNS:
            stat = row["metrics"].get(f"{task}/{metric}")
            if row["group"] == "baseline" and metric.endswith("_at_05"):
                stat = row["metrics"].get(
                    f"{task}/{metric[: -len('_at_05')]}"
                )  # baselines: 0.5 already
            cells.append(fmt(stat, n_seeds > 1))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def gain_table(report: Mapping[str, Any]) -> list[str]:
    """Δ_t and Δ_MTL of each trained model, with its parameters, memory and wall time."""
    rows = report["table"]["rows"]
    n_seeds = len(report["seeds"])
    lines = [
        "",
        "## Multi-task gain and cost",
        "",
        "Δ_t: relative improvement of the task's primary metric over its single-task model, in % "
        "(sales RMSE, sign-flipped so that > 0 is better; price_bin macro-F1; user_profile mAP; recommend AUC), "
        "paired by seed. Δ_MTL: mean of the four (Maninis et al. 2019). "
        f"Single-task budget: {report['single_task_rule']}",
        "",
    ]
    cuda = report["environment"]["cuda"]
    memory_header = "peak GPU MiB" if cuda else "peak RSS MiB (+ growth in run)"
    headers = [
        "model",
        *(f"Δ {t} %" for t in TASKS),
        "Δ_MTL %",
        "trainable params",
        "of which encoder",
        "total params",
        memory_header,
        "wall s",
    ]
    lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        if row["group"] == "baseline":
            continue
        gains = row.get("gain_pct", {})
        params = row.get("parameters") or {}
        if cuda:
            memory = whole(row.get("peak_gpu_mib"))
        else:
            memory = f"{whole(row.get('peak_rss_mib'))} (+{whole(row.get('rss_growth_mib'))})"
        cells = [
            row["name"],
            *(percent(gains.get(t), n_seeds > 1) if gains else "ref." for t in TASKS),
            percent(row.get("delta_mtl_pct"), n_seeds > 1) if gains else "ref.",
            count(params.get("trainable")),
            count(params.get("encoder_trainable")),
            count(params.get("total")),
            memory,
            whole(row.get("wall_s")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Single-task row: parameters summed over the four models (four encoders), peak memory the "
        "largest of the four, wall time their sum. "
        + (
            "Peak GPU memory: torch's peak allocated during the run."
            if cuda
            else "Peak RSS: this process's VmHWM during the run (reset before it), which includes "
            "what earlier runs left resident; the + figure is the growth over the RSS at the run's start."
        ),
        "",
        f"Single-task steps per task: {', '.join(f'{t} {n}' for t, n in report['single_task_steps'].items())} "
        f"(sampling probabilities {', '.join(f'{t} {p:.3f}' for t, p in report['probabilities'].items())}; "
        f"train rows seen by the joint run {', '.join(f'{t} {n:,}' for t, n in report['train_sizes'].items())}).",
        "",
    ]
    return lines
