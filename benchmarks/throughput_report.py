"""The throughput benchmark's printed table: ratios of the measured variants against the targets."""

from __future__ import annotations

import math
from typing import Any

from throughput_common import DTYPE_NAMES, trainer_best_dtype


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else float("nan")


def _verdict(values: tuple[float, float], ok) -> str:
    return "  ".join(
        ("met" if ok(v) else "NOT met") if not math.isnan(v) else "n/a" for v in values
    )


ROW = "{:<58} {:>6} {:>6}  {:<9} {}"


def f3(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.3f}"


def report(results: dict[str, Any]) -> str:
    """The printed table of variants and ratios."""
    r, d = results["runs"], results["derived"]
    dtype = DTYPE_NAMES[results["plan"]["precision"]]
    lines = variant_lines(results) + ratio_lines(d)
    if "mfu" in d:
        lines += mfu_lines(r, d)
    if "predict" in r:
        lines += predict_lines(r, dtype)
    if "scale" in r:
        lines += scale_lines(r)
    lines.append("")
    lines.append(
        f"load average during the runs: {min(results['loads']):.1f} - {max(results['loads']):.1f} "
        f"(2 cores: above ~1 other work shares the cores; the CPU-time columns do not count the waiting)"
    )
    return "\n".join(lines)


def variant_lines(results: dict[str, Any]) -> list[str]:
    """The header and one row per variant: samples, loop and wall times, peak memory."""
    plan, r = results["plan"], results["runs"]
    dtype = DTYPE_NAMES[plan["precision"]]  # the run's precision, by its dtype's name
    best = trainer_best_dtype(plan["precision"])
    lines = []
    lines.append(
        f"shopmtl throughput | {plan['examples_per_task']} examples/task, batch {plan['batch_size']}, "
        f"{plan['steps']} steps ({plan['samples']} samples), max_length {plan['max_length']}, "
        f"{plan['threads']} torch thread(s) | {results['machine']['cpu']}, {results['machine']['nproc']} cores"
    )
    reason = f" ({plan['precision_reason']})" if plan.get("precision_reason") else ""
    lines.append(
        f"precision {dtype}{reason} | {results['machine'].get('describe', results['machine']['cpu'])}"
    )
    lines.append("")
    fmt = "{:<29} {:>7} {:>7} {:>7} {:>9} {:>9} {:>7} {:>7} {:>9} {:>8}"
    lines.append(
        fmt.format(
            "variant",
            "samples",
            "loop s",
            "loop",
            "samples/s",
            "samples/",
            "wall s",
            "CPU s",
            "wall-eval",
            "peak MiB",
        )
    )
    lines.append(fmt.format("", "", "wall", "CPU s", "wall", "CPU-s", "", "", "s", ""))
    order = [
        ("shopmtl", f"1  shopmtl joint ({dtype})"),
        ("plain", "2  plain accelerate loop"),
        ("trainer-fixed", "3a 4x Trainer, pad 128, fp32"),
        ("trainer-best", f"3b 4x Trainer, dynamic, {best}"),
    ]
    for key, label in order:
        if key in r:
            v = r[key]
            lines.append(
                fmt.format(
                    label,
                    v["samples"],
                    f"{v['loop_s']:.1f}",
                    f"{v['loop_cpu_s']:.1f}",
                    f"{v['samples'] / v['loop_s']:.1f}",
                    f"{v['samples'] / v['loop_cpu_s']:.1f}",
                    f"{v['wall_s']:.1f}",
                    f"{v['cpu_s']:.1f}",
                    f"{v['wall_s'] - v.get('final_eval_s', 0.0):.1f}",
                    f"{v['peak_rss_mib']:.0f}",
                )
            )
    for key in ("trainer-fixed", "trainer-best"):
        if key in r:
            lines.append(
                f"   {key} per task (steps / loop wall s / loop CPU s / wall s): "
                + ", ".join(
                    f"{t['task']} {t['steps']}/{t['loop_s']:.1f}/{t['loop_cpu_s']:.1f}/{t['wall_s']:.1f}"
                    for t in r[key]["per_task"]
                )
            )
    if "shopmtl" in r:
        v = r["shopmtl"]
        lines.append(
            f"   shopmtl run: imports {v['imports_s']:.1f} s, data+tokenize+model {v['setup_s']:.1f} s, loop "
            f"{v['loop_s']:.1f} s, final evaluation/baselines/checkpoints {v['final_eval_s']:.1f} s"
        )
    return lines


def ratio_lines(d: dict[str, Any]) -> list[str]:
    """shopmtl against the plain loop and the Trainer runs, with each target's verdict."""
    lines = []
    lines.append("")
    lines.append(
        f"{'ratios (shopmtl / other)':<58} {'wall':>6} {'CPU':>6}  target    verdict (wall, CPU)"
    )
    if "overhead" in d:
        pair = (d["overhead"], d["overhead_cpu"])
        lines.append(
            ROW.format(
                "1/2  samples/s vs the plain loop",
                f3(pair[0]),
                f3(pair[1]),
                ">= 0.95",
                _verdict(pair, lambda x: x >= 0.95),
            )
        )
    for key, label, goal in (("trainer-fixed", "3a", 1 / 3), ("trainer-best", "3b", 1.0)):
        if f"loop_vs_{key}" not in d:
            continue
        text = "<= 0.333" if goal < 1 else "< 1"
        ok = (lambda x, g=goal: x <= g) if goal < 1 else (lambda x: x < 1)
        for kind, what in (
            ("loop", "training-loop time"),
            ("run", "whole run"),
            ("run_noeval", "whole run less final eval"),
        ):
            pair = (d[f"{kind}_vs_{key}"], d[f"{kind}_cpu_vs_{key}"])
            lines.append(
                ROW.format(
                    f"1/{label} {what} vs 4x Trainer {'pad-128 fp32' if label == '3a' else 'best'}",
                    f3(pair[0]),
                    f3(pair[1]),
                    text,
                    _verdict(pair, ok),
                )
            )
    return lines


def mfu_lines(r: dict[str, Any], d: dict[str, Any]) -> list[str]:
    """Training FLOP/s against the matmul peak, for each variant that has one."""
    lines = []
    pair = (d["mfu"], d["mfu_cpu"])
    lines.append(
        ROW.format(
            f"4    training FLOP/s vs {d['peak_dtype']} matmul peak",
            f3(pair[0]),
            f3(pair[1]),
            ">= 0.50",
            _verdict(pair, lambda x: x >= 0.5),
        )
    )
    lines.append(
        f"     6 x {d['non_embedding_params'] / 1e6:.2f}M non-embedding params x {d['tokens']:,} padded tokens "
        f"({d['real_token_share']:.0%} real) = {d['flops'] / 1e12:.2f} TFLOP in the timed steps: "
        f"{d['achieved'] / 1e9:.1f} GFLOP/s wall, {d['achieved_cpu'] / 1e9:.1f} per CPU-s; matmul peak "
        + " / ".join(f"{k} {v / 1e9:.1f}" for k, v in d["peaks"].items())
        + " GFLOP/s "
        f"({r['matmul']['size']}x{r['matmul']['size']}, best of the repeats)"
    )
    for key in ("plain", "trainer-fixed", "trainer-best"):
        if f"mfu_{key}" in d:
            lines.append(
                f"     {key}: {d[f'mfu_{key}']:.3f} of its dtype's peak (CPU-time basis "
                f"{d[f'mfu_cpu_{key}']:.3f}), {d[f'tokens_{key}']:,} padded tokens"
            )
    return lines


def predict_lines(r: dict[str, Any], dtype: str) -> list[str]:
    """predict_frame's rows/s against a bare encoder pass, per task."""
    lines = []
    lines.append(
        f"5    rows/s: predict_frame (what `shopmtl predict` runs) vs a bare {dtype} encoder pass; target >= 0.9"
    )
    for task, v in r["predict"]["tasks"].items():
        pair = (v["bare_s"] / v["shopmtl_s"], v["bare_cpu_s"] / v["shopmtl_cpu_s"])
        cli = r.get("predict_cli", {}).get(task)
        cli_text = f"; CLI end to end {v['rows'] / cli:.0f} rows/s ({cli:.1f} s)" if cli else ""
        lines.append(
            ROW.format(
                f"     {task:<12} {v['rows']:>4} rows, {v['distinct_texts']:>4} distinct of "
                f"{v['texts']:>4} texts",
                f3(pair[0]),
                f3(pair[1]),
                ">= 0.9",
                _verdict(pair, lambda x: x >= 0.9),
            )
        )
        lines.append(
            f"{'':<18}shopmtl {v['rows'] / v['shopmtl_s']:.0f} rows/s, bare {v['rows'] / v['bare_s']:.0f} "
            f"rows/s{cli_text}"
        )
    return lines


def scale_lines(r: dict[str, Any]) -> list[str]:
    """Wall, loop time and memory of the joint run as the rows grow."""
    lines = []
    lines.append(
        "6    scale: shopmtl joint training, one epoch of N rows per task (steps grow with N)"
    )
    base = r["scale"][0]
    per = lambda v, k: v[k] / v["samples"]  # noqa: E731
    for v in r["scale"]:
        lines.append(
            f"     {v['factor']:>2}x {v['examples']:>5} rows/task {v['steps']:>4} steps: wall {v['wall_s']:6.1f} s "
            f"= fixed {v['wall_s'] - v['loop_s']:5.1f} s + loop {v['loop_s']:6.1f} s; loop "
            f"{1000 * per(v, 'loop_s'):.1f} ms/sample wall (x{per(v, 'loop_s') / per(base, 'loop_s'):.2f} of 1x), "
            f"{1000 * per(v, 'loop_cpu_s'):.1f} CPU (x{per(v, 'loop_cpu_s') / per(base, 'loop_cpu_s'):.2f}); "
            f"peak {v['peak_rss_mib']:.0f} MiB"
        )
    return lines


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios on both bases: wall clock and CPU time."""
    r, d = results["runs"], {}
    shop = r.get("shopmtl")
    if shop and "plain" in r:
        p = r["plain"]
        d["overhead"] = ratio(shop["samples"] / shop["loop_s"], p["samples"] / p["loop_s"])
        d["overhead_cpu"] = ratio(
            shop["samples"] / shop["loop_cpu_s"], p["samples"] / p["loop_cpu_s"]
        )
    for key in ("trainer-fixed", "trainer-best"):
        if shop and key in r:
            o = r[key]
            d[f"loop_vs_{key}"] = ratio(shop["loop_s"], o["loop_s"])
            d[f"loop_cpu_vs_{key}"] = ratio(shop["loop_cpu_s"], o["loop_cpu_s"])
            d[f"run_vs_{key}"] = ratio(shop["wall_s"], o["wall_s"])
            d[f"run_cpu_vs_{key}"] = ratio(shop["cpu_s"], o["cpu_s"])
            d[f"run_noeval_vs_{key}"] = ratio(shop["wall_s"] - shop["final_eval_s"], o["wall_s"])
            d[f"run_noeval_cpu_vs_{key}"] = ratio(
                shop["cpu_s"] - shop["final_eval_cpu_s"], o["cpu_s"]
            )
    if "matmul" in r and "plain" in r and shop:
        p, peak = r["plain"], r["matmul"]["peak_flops"]
        dtype = DTYPE_NAMES[
            results["plan"]["precision"]
        ]  # the run's dtype: its peak is the denominator
        n = p["non_embedding_params"]
        steps = len(p["padded_tokens"])
        tokens = sum(p["padded_tokens"][1:])  # the steps the steady loop time covers
        d.update(
            non_embedding_params=n,
            tokens=tokens,
            real_token_share=sum(p["real_tokens"][1:]) / tokens,
            flops=6 * n * tokens,
            peak_dtype=dtype,
            peaks={k: v for k, v in peak.items() if not k.endswith("_per_cpu_s")},
        )
        covered = (steps - 1) / steps
        d["achieved"] = d["flops"] / (shop["loop_s"] * covered)
        d["achieved_cpu"] = d["flops"] / (shop["loop_cpu_s"] * covered)
        d["mfu"] = d["achieved"] / peak[dtype]
        d["mfu_cpu"] = d["achieved_cpu"] / peak[f"{dtype}_per_cpu_s"]
        d["mfu_plain"] = d["flops"] / (p["loop_s"] * covered) / peak[dtype]
        d["mfu_cpu_plain"] = d["flops"] / (p["loop_cpu_s"] * covered) / peak[f"{dtype}_per_cpu_s"]
        d["tokens_plain"] = tokens
        for key, used in (
            ("trainer-fixed", "fp32"),
            ("trainer-best", trainer_best_dtype(results["plan"]["precision"])),
        ):
            if key in r:
                total = sum(t["padded_tokens_total"] for t in r[key]["per_task"])
                d[f"tokens_{key}"] = int(total)
                d[f"mfu_{key}"] = 6 * n * total / r[key]["loop_s"] / peak[used]
                d[f"mfu_cpu_{key}"] = (
                    6 * n * total / r[key]["loop_cpu_s"] / peak[f"{used}_per_cpu_s"]
                )
    return d
