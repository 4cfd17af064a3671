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
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling modules
from quality_cli import parse_args  # noqa: E402
from quality_report import build_report, write_report  # noqa: E402
from quality_run import PhaseTimer, config_differences, count_parameters, run_one  # noqa: E402
from quality_table import PRIMARY, TASKS  # noqa: E402

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
    from shopmtl.core import api

    overrides = [*profile.overrides, *args.set]
    if args.max_steps:
        overrides += [
            f"training.max_steps={args.max_steps}",
            f"training.eval_every={args.max_steps}",
        ]
    if args.threads:
        overrides.append(f"training.threads={args.threads}")
    config = api.load_config(profile.config, [*overrides, *extra])
    return config.model_copy(update={"seed": config.seed + seed_offset})


def _with(config: Any, **changes: Any) -> Any:
    """A validated copy of ``config`` with top-level and ``training`` changes."""
    from shopmtl.core import api

    raw = config.model_dump(mode="json")
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            raw[section][name] = value
        else:
            raw[section] = value
    return api.validate_config(raw, source="benchmarks/quality.py")


def make_plan(
    profile: Profile,
    args: argparse.Namespace,
    seed_offset: int,
    variants: Sequence[Variant],
    sizes: Mapping[str, int],
    plugins: Any,
    work: Path,
) -> Plan:
    from shopmtl.core import api

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
    plan.probabilities = api.task_probabilities(
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
    from shopmtl.core import api

    config = base_config(profile, args, 0)
    sizes, data = {}, {}
    for task in TASKS:
        data[task] = api.build_task_data(plugins.tasks[task], config)
        cap = config.tasks[task].max_train_examples
        sizes[task] = min(len(data[task]["train"]), cap) if cap else len(data[task]["train"])
    return sizes, data


def run_baselines(
    profile: Profile, args: argparse.Namespace, plugins: Any, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Every task's baselines on test: fitted on the full train split, evaluated on the test
    rows the models are evaluated on (all of them, unless the profile caps test rows)."""
    from shopmtl.core import api

    config = base_config(profile, args, 0)
    out = {}
    for task in TASKS:
        started = time.perf_counter()
        capped = api.subsample(
            data[task],
            api.TaskConfig(max_eval_examples=config.tasks[task].max_eval_examples),
            config.seed,
        )
        out[task] = api.to_plain(
            dict(plugins.tasks[task].baselines(capped, "test", classical=True))
        )
        print(
            f"  baselines {task}: {', '.join(out[task])} [{time.perf_counter() - started:.1f}s]",
            flush=True,
        )
    return out


# --------------------------------------------------------------------------- main


def choose_variants(parser: argparse.ArgumentParser, names: str) -> list[Variant]:
    """The ``--variants`` asked for, or a parser error naming the unknown ones."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {v.name: v for v in VARIANTS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[n] for n in wanted]


def finished_result(run_dir: Path, config: Any, plugins: Any) -> dict[str, Any] | None:
    """A finished run's ``result.json`` (``--report-only``), with how its config differs."""
    if not (run_dir / "result.json").is_file():
        return None
    result = json.loads((run_dir / "result.json").read_text())
    if "encoder_trainable" not in result["parameters"]:  # results of an older script
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
    return result


def trained_result(
    config: Any, kind: str, name: str, plugins: Any, timer: PhaseTimer, resume: bool
):
    """Train one planned run (or reuse it with ``--resume``) and print its primary metrics."""
    run_dir = config.resolved_output_dir()
    print(
        f"[seed {config.seed}] {kind} {name}: {config.training.max_steps} steps -> {run_dir}",
        flush=True,
    )
    result = run_one(config, plugins, timer, run_dir, resume)
    summary = " | ".join(
        f"{t} {PRIMARY[t]}={result['metrics'][t]['test'].get(PRIMARY[t]):.4f}"
        for t in TASKS
        if t in result["metrics"]
    )
    print(f"    {result['wall_s']:.0f}s | {summary}", flush=True)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser, args = parse_args(argv, list(PROFILES), [v.name for v in VARIANTS])
    from shopmtl.core import api

    profile = PROFILES[args.profile]
    variants = choose_variants(parser, args.variants)
    n_seeds = args.seeds or profile.seeds
    variant_seeds = args.variant_seeds or profile.variant_seeds or n_seeds
    offsets = (
        [int(k) for k in args.seed_offsets.split(",")]
        if args.seed_offsets
        else list(range(n_seeds))
    )
    work = (args.work_dir or REPO / "benchmarks" / "runs" / f"quality-{args.profile}").resolve()
    timer = PhaseTimer()
    plugins = api.load_plugins([("quality_timer", timer._hooks())], only=[])
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
            if args.report_only:
                result = finished_result(config.resolved_output_dir(), config, plugins)
            else:
                result = trained_result(config, kind, name, plugins, timer, args.resume)
            if result is not None:
                runs[(kind, name, config.seed)] = result

    assert plan is not None
    joint_steps = base_config(profile, args, 0).training.max_steps
    report = build_report(args, profile, plan, variants, runs, seeds, baselines, joint_steps)
    report["total_wall_s"] = time.perf_counter() - started
    write_report(report, args.output or RESULTS / profile.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
