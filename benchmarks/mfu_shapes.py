"""Where the hardware limit lies: training FLOP/s of the default encoder per batch shape.

`throughput.py` reports one figure for a whole joint run (mixed short and long batches).
This script explains it: it trains the default encoder (all-MiniLM-L6-v2, word embeddings
frozen as shopmtl does, fused AdamW) on random token ids for a few steps at each batch shape,
in the precision a run would use on this machine (``--precision``, default ``auto``: bf16
autocast where the CPU computes bf16 natively, fp32 elsewhere), and prints, per shape, the
step time and the achieved FLOP/s against the measured peak of a large matmul *in that
dtype*, by two counts:

* ``6N``: 6 x non-embedding parameters x tokens (the count issue #5 and throughput.py use);
* ``6N+attn``: plus attention's score and value matmuls, 12 x layers x length x width per
  token (PaLM, Chowdhery et al. 2022, appendix B), which 6N leaves out and which grow with
  the sequence length.

Several precisions (``--precision no,bf16``) train each shape in each, interleaved (one model
per precision, the same ids), and end with the step-time ratio of the first to each other:
measured side by side, that ratio is the figure that compares across machines and loads.
Times are wall clock and CPU time of this process (with one thread, CPU time is the work
done whatever else runs on the machine).

Run from the repository root with the virtualenv active::

    python benchmarks/mfu_shapes.py                      # 1 torch thread, as throughput.py; auto precision
    python benchmarks/mfu_shapes.py --precision no,bf16  # fp32 and bf16 side by side
    python benchmarks/mfu_shapes.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
from throughput_common import (
    DTYPE_NAMES,
    bench_hardware,
    bench_precision,  # siblings: the same peak and
    matmul_peak,
    torch_dtype,
)  # precision resolution throughput.py uses

SHAPES = ((32, 10), (64, 10), (128, 10), (256, 10), (32, 32), (32, 64), (32, 128), (64, 128))


def step_seconds(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    ids: torch.Tensor,
    steps: int,
    dtype: torch.dtype,
) -> tuple[float, float]:
    """Mean (wall, CPU) seconds of one training step (forward, backward, AdamW) on ``ids``, with autocast
    to ``dtype`` (none for fp32)."""
    mask = torch.ones_like(ids)

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        hidden.float().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # one-off allocations and kernel selection
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps, (time.process_time() - start_cpu) / steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1, as throughput.py)"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed steps per shape")
    parser.add_argument(
        "--precision",
        default="auto",
        help="auto, no (fp32), bf16 or fp16, or several comma-separated (e.g. no,bf16) to compare "
        "them side by side (default auto: bf16 where this CPU computes it natively, else fp32)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hardware = bench_hardware(args.threads)
    choices = {}
    for requested in (p.strip() for p in args.precision.split(",") if p.strip()):
        try:
            choice = bench_precision(requested, hardware)
        except ValueError as error:  # PrecisionError: not a precision, or fp16 on a CPU
            raise SystemExit(str(error)) from None
        choices.setdefault(choice.precision, choice)  # "auto,bf16" on a bf16 CPU: measured once

    runs = models_and_peaks(choices)
    model = next(iter(runs.values()))[0]
    # As throughput.py: the pooler is not trained (shopmtl mean-pools the last layer).
    params = sum(
        p.numel()
        for name, p in model.named_parameters()
        if not name.startswith(("embeddings.", "pooler."))
    )
    layers, width = model.config.num_hidden_layers, model.config.hidden_size
    print(
        f"all-MiniLM-L6-v2: {params / 1e6:.2f}M non-embedding parameters, {layers} layers x {width}; "
        f"{args.threads} thread(s); {args.steps} timed steps per shape"
    )
    print(f"machine: {hardware.describe()}")
    for precision, choice in choices.items():
        _, _, peak, peak_cpu = runs[precision]
        print(
            f"{DTYPE_NAMES[precision]} ({choice.reason}): {DTYPE_NAMES[precision]} matmul peak {peak / 1e9:.0f} "
            f"GFLOP/s ({peak_cpu / 1e9:.0f} per CPU-s; 4096x4096, best of 5)"
        )
        for warning in choice.warnings:
            print(f"  warning: {warning}")
    print(
        f"{'batch':>5} {'length':>6} {'tokens':>6} {'dtype':>5} {'ms/step':>8} {'CPU ms':>7} {'GFLOP/s 6N':>11} "
        f"{'of peak':>8} {'GFLOP/s 6N+attn':>16} {'of peak':>8} {'(CPU)':>6}"
    )
    times = {}
    for batch, length in SHAPES:
        ids = torch.randint(
            1000,
            20000,
            (batch, length),
            generator=torch.Generator().manual_seed(batch * 1000 + length),
        )
        tokens = batch * length
        for precision, (model, optimizer, peak, peak_cpu) in runs.items():
            seconds, cpu = times[(batch, length, precision)] = step_seconds(
                model, optimizer, ids, args.steps, torch_dtype(precision)
            )
            dense = 6 * params * tokens / seconds
            with_attention = (6 * params + 12 * layers * length * width) * tokens
            print(
                f"{batch:>5} {length:>6} {tokens:>6} {DTYPE_NAMES[precision]:>5} {seconds * 1e3:>8.0f} {cpu * 1e3:>7.0f} "
                f"{dense / 1e9:>11.0f} {dense / peak:>8.2f} {with_attention / seconds / 1e9:>16.0f} "
                f"{with_attention / seconds / peak:>8.2f} {with_attention / cpu / peak_cpu:>6.2f}",
                flush=True,
            )
    print_ratios(runs, times)


def models_and_peaks(choices) -> dict[str, tuple]:
    """Per precision: MiniLM from the same initial weights, its AdamW, and the matmul peak."""
    from shopmtl.core import api
    from transformers import AutoModel

    path = api.resolve_encoder_path("sentence-transformers/all-MiniLM-L6-v2")
    runs = {}
    for precision in choices:
        torch.manual_seed(0)  # every precision starts from the same weights
        model = AutoModel.from_pretrained(path).train()
        model.get_input_embeddings().weight.requires_grad_(False)
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True
        )
        peak, peak_cpu = matmul_peak(torch_dtype(precision), size=4096, repeats=5)
        runs[precision] = (model, optimizer, peak, peak_cpu)
    return runs


def print_ratios(runs: dict[str, tuple], times: dict) -> None:
    """With several precisions: each one's step time against the first's, shape by shape."""
    if len(runs) > 1:
        first, *others = runs
        for other in others:
            names = f"{DTYPE_NAMES[first]} / {DTYPE_NAMES[other]}"
            print(
                f"\nstep time {names} (same session, interleaved; > 1: {DTYPE_NAMES[other]} is faster)"
            )
            print(f"{'batch':>5} {'length':>6} {'wall':>6} {'CPU':>6}")
            for batch, length in SHAPES:
                a, b = times[(batch, length, first)], times[(batch, length, other)]
                print(f"{batch:>5} {length:>6} {a[0] / b[0]:>6.2f} {a[1] / b[1]:>6.2f}")


if __name__ == "__main__":
    main()
