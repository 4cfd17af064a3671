"""``benchmarks/quality.py``'s report: everything the benchmark found, as JSON and a markdown table."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any

from quality_table import PRIMARY, aggregate, markdown


def environment() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": cuda,
        "device": torch.cuda.get_device_name(0)
        if cuda
        else f"CPU, {os.cpu_count()} cores ({platform.processor() or platform.machine()})",
        "threads": torch.get_num_threads(),
    }


def build_report(args, profile, plan, variants, runs, seeds, baselines, joint_steps) -> dict:
    """Everything the benchmark found, as written to ``STEM.json``."""
    rule = (
        "the single-task model of task t trains round(p_t × S) steps of the same batch size "
        f"(S = {joint_steps} joint steps, p_t = the joint run's "
        "sampling probability of t), so it sees as many examples of t as the joint run; validations scale alike."
    )
    return {
        "profile": args.profile,
        "profile_description": profile.description,
        "overrides": [*profile.overrides, *args.set]
        + ([f"training.max_steps={args.max_steps}"] if args.max_steps else []),
        "seeds": seeds,
        "variants": {
            v.name: {
                "label": v.label,
                "overrides": list(v.overrides),
                "accumulation": v.accumulation,
            }
            for v in variants
        },
        "single_task_rule": rule,
        "single_task_steps": plan.single_steps,
        "probabilities": plan.probabilities,
        "train_sizes": plan.train_sizes,
        "primary_metrics": PRIMARY,
        "baselines": baselines,
        "table": aggregate(baselines, runs, variants, seeds),
        "runs": [
            {
                "kind": kind,
                "name": name,
                "seed": seed,
                **{k: v for k, v in r.items() if k != "config"},
            }
            for (kind, name, seed), r in runs.items()
        ],
        "environment": environment(),
        "generated": _dt.datetime.now().isoformat(timespec="seconds"),
        "report_only": args.report_only,
        "runs_wall_s": sum(r["wall_s"] for r in runs.values()),
    }


def write_report(report: dict[str, Any], output: Path) -> None:
    """``STEM.json`` and the markdown table ``STEM.md``, printed too."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    output.with_suffix(".md").write_text(text)
    print()
    print(text)
    print(
        f"wrote {output.with_suffix('.md')} and {output.with_suffix('.json')} "
        f"({report['total_wall_s'] / 60:.1f} min)"
    )
