#!/usr/bin/env python
"""Quality of shopmtl's multi-task model on the four built-in tasks (docs/tasks.md), against
the baselines and against one single-task model per task.

Run from the repository root (the shopmtl virtualenv active)::

    python benchmarks/quality.py --profile smoke     # end-to-end check of this script, ~2 minutes
    python benchmarks/quality.py --profile cpu       # real encoder, 3 seeds, sized for a 2-core CPU
    python benchmarks/quality.py --profile full      # the default run as shipped, 3 seeds, for a GPU

It writes one table of test metrics, mean +- std over the seeds, as markdown and JSON
(``benchmarks/results/quality.{md,json}``; the smoke profile writes ``quality_smoke.*``):

1. **Baselines**: each task's ``baselines(data, "test", classical=True)`` -- TASKS.md's
   trivial baselines plus the classical peers (gradient boosting, TF-IDF + logistic
   regression). They are deterministic (fixed ``random_state``) and fitted on the full
   train split, so they run once, not per seed.
2. **Single-task fine-tuning**: one model per task (``train`` with only that task), same
   encoder and settings. Budget rule: the single-task model of task t gets exactly the
   examples of t the joint run trains on -- ``round(p_t * S)`` steps of the same batch size,
   where S is the joint run's steps and p_t its sampling probability of t (temperature
   sampling over the capped train sizes); validations scale the same way.
3. **The joint model** (the default config: MMoE gates over the pooled vector) and
   variants: hard sharing (one pooled vector for every head), and on hard sharing: uncertainty
   weighting, PCGrad (gradient accumulation over 4 micro-batches, one per task, and S/4
   optimiser steps, so the same examples), LoRA (r=12 on every linear layer, encoder learning rate 1e-3:
   LoRA's usual, 5x the full fine-tuning one) and the sales losses Poisson and ZILN; and PLE.

For every model row: the multi-task gain per task, Delta_t = +-(M_t - M_t^single) / M_t^single on
the task's primary metric (sign flipped where lower is better: sales RMSE), and overall
Delta_MTL = mean over tasks (Maninis et al., CVPR 2019), each paired by seed; trainable and
total parameters; peak memory (GPU: peak allocated; CPU: peak RSS of this process during the
run, VmHWM reset before each run) and wall time.

user_profile: a model's micro/macro-F1 use per-label thresholds calibrated on val; the
``@0.5`` columns are TASKS.md's fixed-threshold F1s, comparable with the baselines'.

Runs go to ``--work-dir`` (default ``benchmarks/runs/quality-<profile>``, git-ignored); each
leaves a ``result.json``, and ``--resume`` reuses those whose config is unchanged.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling modules
from quality_run import PhaseTimer, config_differences, count_parameters, run_one  # noqa: E402
from quality_table import PRIMARY, TASKS, aggregate, markdown  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


@dataclass(frozen=True)
class Profile:
    """A size of the benchmark: the base config, overrides and default seeds."""

    description: str
    config: str | None  # None: the built-in default run (core/defaults/default.yaml)
    overrides: tuple[str, ...]
    seeds: int
    output: str  # results file stem under benchmarks/results
    variant_seeds: int | None = None  # seeds of the variants other than "joint" (None: all)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "tiny random encoder (examples/configs/smoke.yaml), 8 steps, 1 seed: checks the script end to end",
        str(REPO / "examples" / "configs" / "smoke.yaml"),
        ("training.max_steps=8", "training.eval_every=8", "training.early_stopping_patience=null"),
        1,
        "quality_smoke",
    ),
    "cpu": Profile(
        "the default run as shipped (core/defaults/default.yaml: all-MiniLM-L6-v2, MMoE sharing, classical priors, "
        "train caps sales/recommend 20,000 rows; its steps and validations, unless --set changes them); the joint "
        "model and the single-task models with 3 seeds, the "
        "other variants with 1 unless their row says more (--variant-seeds); val and test in full",
        None,
        (),
        3,
        "quality",
        variant_seeds=1,
    ),
    "full": Profile(
        "the default run as shipped (core/defaults/default.yaml), every model with 3 seeds; meant for a GPU",
        None,
        (),
        3,
        "quality",
    ),
}


@dataclass(frozen=True)
class Variant:
    """A joint-model variant: config overrides on top of the profile's."""

    name: str
    label: str
    overrides: tuple[str, ...] = ()
    accumulation: int = 1  # micro-batches per optimiser step; steps are divided by it


# LoRA r=12 on every linear layer of the encoder (the config's default target_modules):
# 498k adapter weights, 4.5 % of what full fine-tuning trains, the most under the 5 %.
LORA = (
    "encoder.lora.enabled=true",
    "encoder.lora.r=12",
    "encoder.lora.alpha=24",
    "training.learning_rate=1.0e-3",
)

# The default run shares the encoder through MMoE gates (core/defaults/default.yaml); the
# other variants change one thing of hard sharing, the plain one-pooled-vector model.
HARD = "sharing.kind=hard"

VARIANTS: tuple[Variant, ...] = (
    Variant("joint", "joint (default: MMoE, static weights)"),
    Variant("hard", "joint, hard sharing", (HARD,)),
    Variant(
        "uncertainty",
        "hard sharing + uncertainty weighting",
        (HARD, "training.loss_weighting=uncertainty"),
    ),
    Variant(
        "pcgrad",
        "hard sharing + PCGrad (4 micro-batches/step)",
        (HARD, "training.gradient_surgery=pcgrad", "training.gradient_accumulation_steps=4"),
        accumulation=4,
    ),
    Variant("ple", "joint + PLE", ("sharing.kind=ple",)),
    Variant("lora", "hard sharing + LoRA r=12", (HARD, *LORA)),
    Variant(
        "lora_per_task",
        "hard sharing + LoRA r=12, one adapter per task",
        (HARD, *LORA, "encoder.lora.per_task=true"),
    ),
    Variant(
        "sales_poisson",
        "hard sharing + sales Poisson loss",
        (HARD, "tasks.sales.settings.loss=poisson"),
    ),
    Variant(
        "sales_ziln",
        "hard sharing + sales ZILN loss",
        (HARD, "tasks.sales.settings.loss=zero_inflated_lognormal"),
    ),
)


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Plan:
    """The configs of every run, and the rules that sized them."""

    joint: dict[str, Any] = field(default_factory=dict)  # variant -> Config
    single: dict[str, Any] = field(default_factory=dict)  # task -> Config
    probabilities: dict[str, float] = field(default_factory=dict)
    train_sizes: dict[str, int] = field(default_factory=dict)
    single_steps: dict[str, int] = field(default_factory=dict)


def base_config(
    profile: Profile, args: argparse.Namespace, seed_offset: int, extra: Sequence[str] = ()
) -> Any:
    from shopmtl.core.config import load_config

    overrides = [*profile.overrides, *args.set]
    if args.max_steps:
        overrides += [
            f"training.max_steps={args.max_steps}",
            f"training.eval_every={args.max_steps}",
        ]
    if args.threads:
        overrides.append(f"training.threads={args.threads}")
    config = load_config(profile.config, [*overrides, *extra])
    return config.model_copy(update={"seed": config.seed + seed_offset})


def _with(config: Any, **changes: Any) -> Any:
    """A validated copy of ``config`` with top-level and ``training`` changes."""
    from shopmtl.core.config import validate_config

    raw = config.model_dump(mode="json")
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            raw[section][name] = value
        else:
            raw[section] = value
    return validate_config(raw, source="benchmarks/quality.py")


def make_plan(
    profile: Profile,
    args: argparse.Namespace,
    seed_offset: int,
    variants: Sequence[Variant],
    sizes: Mapping[str, int],
    plugins: Any,
    work: Path,
) -> Plan:
    from shopmtl.core.mtl.sampler import task_probabilities

    plan = Plan(train_sizes=dict(sizes))
    seed_dir = f"seed{seed_offset}"
    for variant in variants:
        config = base_config(profile, args, seed_offset, variant.overrides)
        steps = max(1, round(config.training.max_steps / variant.accumulation))
        every = max(1, round(config.training.eval_every / variant.accumulation))
        plan.joint[variant.name] = _with(
            config,
            training__max_steps=steps,
            training__eval_every=every,
            output_dir=str(work / variant.name / seed_dir),
            run_name=variant.name,
        )
    # One fine-tuned model per task is the plain recipe: the encoder and the task's head, no experts.
    base = base_config(profile, args, seed_offset, (HARD,))
    plan.probabilities = task_probabilities(
        sizes, base.sampler, plugins.samplers, {n: t.sample_weight for n, t in base.tasks.items()}
    )
    for task in TASKS if not args.no_single_task else ():
        p = plan.probabilities[task]
        steps = max(1, round(p * base.training.max_steps))
        every = max(1, round(p * base.training.eval_every))
        plan.single_steps[task] = steps
        tasks = {task: base.tasks[task].model_dump(mode="json")}
        plan.single[task] = _with(
            base,
            tasks=tasks,
            training__max_steps=steps,
            training__eval_every=every,
            output_dir=str(work / f"single_{task}" / seed_dir),
            run_name=f"single_{task}",
        )
    return plan


def train_sizes(
    profile: Profile, args: argparse.Namespace, plugins: Any
) -> tuple[dict[str, int], dict[str, Any]]:
    """Train rows per task as the joint run sees them (after its caps), and the task data
    (full splits) for the baselines."""
    from shopmtl.core.data.prepare import build_task_data

    config = base_config(profile, args, 0)
    sizes, data = {}, {}
    for task in TASKS:
        data[task] = build_task_data(plugins.tasks[task], config)
        cap = config.tasks[task].max_train_examples
        sizes[task] = min(len(data[task]["train"]), cap) if cap else len(data[task]["train"])
    return sizes, data


def run_baselines(
    profile: Profile, args: argparse.Namespace, plugins: Any, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Every task's baselines on test: fitted on the full train split, evaluated on the test
    rows the models are evaluated on (all of them, unless the profile caps test rows)."""
    from shopmtl.core.config import TaskConfig
    from shopmtl.core.data.prepare import subsample
    from shopmtl.core.engine.evaluate import to_plain

    config = base_config(profile, args, 0)
    out = {}
    for task in TASKS:
        started = time.perf_counter()
        capped = subsample(
            data[task],
            TaskConfig(max_eval_examples=config.tasks[task].max_eval_examples),
            config.seed,
        )
        out[task] = to_plain(dict(plugins.tasks[task].baselines(capped, "test", classical=True)))
        print(
            f"  baselines {task}: {', '.join(out[task])} [{time.perf_counter() - started:.1f}s]",
            flush=True,
        )
    return out


# --------------------------------------------------------------------------- main


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


HELP_EPILOG = """\
profiles:
  smoke  tiny random encoder (examples/configs/smoke.yaml: 256 train rows per task, capped val/test,
         19 ranking negatives), 8 steps, 1 seed. Checks this script end to end in about 2 minutes on a
         quiet 2-core CPU; its numbers mean nothing.
  cpu    the default run as shipped (core/defaults/default.yaml: all-MiniLM-L6-v2, max_length 64,
         batch 32, bf16 where native, classical priors, its steps (--set training.max_steps=N to
         change them; examples/configs/best.yaml's 1,200), train caps of 20,000 random rows for
         sales and recommend; price_bin and user_profile in full; val and test NOT subsampled:
         TASKS.md's splits, 99 ranking negatives). The joint model and the four single-task models
         with 3 seeds, the other variants with 1 (--variant-seeds 3 for all).
         Measured on this 2-core CPU (AMD EPYC, avx512_bf16), 2026-11-23: two processes side by
         side with --threads 1 (OMP_WAIT_POLICY=PASSIVE), one seed set each, then one --resume
         call for the table: see benchmarks/RESULTS.md for the commands and the wall time.
  full   the same runs, every variant with 3 seeds; meant for a GPU.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Quality of the multi-task model vs baselines and single-task models (test split).",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", choices=list(PROFILES), default="smoke")
    parser.add_argument(
        "--seeds", type=int, default=None, help="number of seeds (default: the profile's)"
    )
    parser.add_argument(
        "--variants",
        default=",".join(v.name for v in VARIANTS),
        help="comma-separated joint variants (default: all): "
        + ", ".join(v.name for v in VARIANTS),
    )
    parser.add_argument(
        "--no-single-task", action="store_true", help="skip the single-task models (no Δ_MTL)"
    )
    parser.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="joint steps S (one validation at the end); single-task steps follow the budget rule",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="run folders (default benchmarks/runs/quality-<profile>)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results stem, writes STEM.md and STEM.json (default benchmarks/results/quality[_smoke])",
    )
    parser.add_argument(
        "--resume", action="store_true", help="reuse finished runs whose config is unchanged"
    )
    parser.add_argument(
        "--variant-seeds",
        type=int,
        default=None,
        help="train the variants other than 'joint' for the first K seeds only "
        "(default: the profile's; cpu: 1)",
    )
    parser.add_argument(
        "--seed-offsets",
        default=None,
        help="comma-separated seed offsets this process trains (default: all, 0..seeds-1); "
        "split seeds over processes, then run once more with --resume to write the table",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the table from the runs already finished in --work-dir "
        "(each run's result.json keeps the config it ran with)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every run, joint and single-task alike (repeat it): measures a "
        "recipe against single-task models trained with the same recipe; give it its own --work-dir",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per run (training.threads): 1 lets two processes share 2 cores",
    )
    args = parser.parse_args(argv)

    from shopmtl.plugins.builtin import BUILTIN_PLUGINS
    from shopmtl.registry.manager import load_plugins

    profile = PROFILES[args.profile]
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    known = {v.name: v for v in VARIANTS}
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    variants = [known[n] for n in names]
    n_seeds = args.seeds or profile.seeds
    variant_seeds = args.variant_seeds or profile.variant_seeds or n_seeds
    offsets = (
        [int(k) for k in args.seed_offsets.split(",")]
        if args.seed_offsets
        else list(range(n_seeds))
    )
    work = (args.work_dir or REPO / "benchmarks" / "runs" / f"quality-{args.profile}").resolve()
    output = args.output or RESULTS / profile.output
    timer = PhaseTimer()
    plugins = load_plugins([*BUILTIN_PLUGINS, ("quality_timer", timer._hooks())], only=[])
    started = time.perf_counter()

    print(f"quality benchmark, profile {args.profile}: {profile.description}", flush=True)
    sizes, data = train_sizes(profile, args, plugins)
    baselines = {} if args.no_baselines else run_baselines(profile, args, plugins, data)
    del data

    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    seeds: list[int] = []
    plan = None
    for k in offsets:
        plan = make_plan(profile, args, k, variants, sizes, plugins, work)
        configs = [*plan.joint.values(), *plan.single.values()]
        if not configs:
            parser.error("nothing to train: choose --variants, or drop --no-single-task")
        seeds.append(configs[0].seed)
        jobs = [("single", task, config) for task, config in plan.single.items()]
        jobs += [
            ("joint", name, config)
            for name, config in plan.joint.items()
            if name == "joint" or k < variant_seeds
        ]
        for kind, name, config in jobs:
            run_dir = config.resolved_output_dir()
            if args.report_only:
                if (run_dir / "result.json").is_file():
                    result = json.loads((run_dir / "result.json").read_text())
                    if (
                        "encoder_trainable" not in result["parameters"]
                    ):  # results of an older script
                        result["parameters"] = count_parameters(run_dir, plugins.tasks)
                    result["config_differences"] = config_differences(
                        result["config"], config.model_dump(mode="json")
                    )
                    if result["config_differences"]:
                        print(
                            f"  note: {run_dir} ran with a config that differs from this plan's in "
                            f"{', '.join(result['config_differences'])}",
                            flush=True,
                        )
                    runs[(kind, name, config.seed)] = result
                continue
            print(
                f"[seed {config.seed}] {kind} {name}: {config.training.max_steps} steps "
                f"-> {run_dir}",
                flush=True,
            )
            result = run_one(config, plugins, timer, run_dir, args.resume)
            runs[(kind, name, config.seed)] = result
            summary = " | ".join(
                f"{t} {PRIMARY[t]}={result['metrics'][t]['test'].get(PRIMARY[t]):.4f}"
                for t in TASKS
                if t in result["metrics"]
            )
            print(f"    {result['wall_s']:.0f}s | {summary}", flush=True)

    assert plan is not None
    rule = (
        "the single-task model of task t trains round(p_t × S) steps of the same batch size "
        f"(S = {base_config(profile, args, 0).training.max_steps} joint steps, p_t = the joint run's "
        "sampling probability of t), so it sees as many examples of t as the joint run; validations scale alike."
    )
    report = {
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
        "train_sizes": sizes,
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
        "total_wall_s": time.perf_counter() - started,
        "report_only": args.report_only,
        "runs_wall_s": sum(r["wall_s"] for r in runs.values()),
    }
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
