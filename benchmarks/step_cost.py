"""What a training step of the default run costs, before and after issue #16, side by side.

The default run's steps are MiniLM forward+backward passes on four kinds of batch (the task
mix of ``core/defaults/default.yaml``): short product descriptions (price_bin, sales),
customer histories (user_profile) and 4 histories plus ~32 descriptions (recommend). This
script times one step of each kind for four encoder set-ups in the same process, interleaved,
and prints the mix-weighted step time and the ratio, in bf16 and in fp32:

* ``old``: every layer trains, texts up to 128 tokens (the default before issue #16);
* ``frozen2``: embeddings and the lowest 2 layers frozen, texts up to 64 tokens, the frozen
  layers recomputed at every step (the default of the first #16 change);
* ``frozen2-cached``: the same with the frozen layers' output reused per text
  (``encoder.cache_frozen_layers``, on by default);
* ``frozen3-cached``: 3 layers frozen and cached (the default now).

In the cached set-ups a step's short texts (product descriptions: price_bin, sales and
recommend's candidates) are texts seen before, and its customer histories are new, as in
the default run (3,031 products over ~6 epochs; most histories are drawn about once).

Ratios measured side by side in one run are what compare across machines (an AVX2 laptop
runs both slower, but in about the same ratio). Random token ids: the cost depends on the
shapes, not on the words. Run from the repository root with the virtualenv active::

    python benchmarks/step_cost.py                 # torch's default threads
    python benchmarks/step_cost.py --threads 1
    python benchmarks/step_cost.py --threads 1 --clock cpu   # beside other jobs: CPU seconds

``--clock cpu`` times a step by the CPU seconds the process used rather than by the wall
clock: with one thread that is the step's own work, which other jobs sharing the cores
barely change (they stretch the wall clock instead).
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
from shopmtl.core.api import EncoderConfig, build_encoder, detect_hardware

# Share of batches per task in the default run (sampler temperature 3, price_bin weight 5).
TASK_MIX = {"price_bin": 0.52, "sales": 0.20, "user_profile": 0.08, "recommend": 0.20}
# (encoder.freeze_layers, encoder.max_length, reuse the frozen layers' output)
SETUPS = {
    "old": (0, 128, False),
    "frozen2": (2, 64, False),
    "frozen2-cached": (2, 64, True),
    "frozen3-cached": (3, 64, True),
}


def batch_shapes(max_length: int) -> dict[str, list[tuple[int, int]]]:
    """Each task's padded token tensors per step (a recommend batch has two length buckets)."""
    return {
        "price_bin": [(32, 12)],
        "sales": [(32, 12)],
        "user_profile": [(32, max_length)],
        "recommend": [(4, max_length), (32, 10)],
    }


def text_ids(shape: tuple[int, int], fresh: itertools.count) -> list[int]:
    """Bank ids for a bucket: the same ids for short texts (seen), new ones for histories."""
    return (
        [shape[1] * 1000 + i for i in range(shape[0])]
        if shape[1] < 32
        else [next(fresh) for _ in range(shape[0])]
    )


def mixed_step_seconds(
    encoder: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    max_length: int,
    bf16: bool,
    steps: int,
    clock=time.perf_counter,
) -> float:
    """Mix-weighted mean wall seconds of a training step (forward, backward, AdamW)."""
    total, fresh = 0.0, itertools.count(10**6)
    for task, shapes in batch_shapes(max_length).items():
        # Fixed tokens: cached texts must match. Bound as defaults: each task's step uses its own.
        tokens = {s: torch.randint(1000, 20000, s) for s in shapes}

        def step(tokens=tokens, shapes=shapes) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = sum(
                    encoder(tokens[s], torch.ones(s, dtype=torch.long), text_ids(s, fresh)).sum()
                    for s in shapes
                )
            out.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        step(), step()  # one-off allocations and kernel selection for these shapes
        started = clock()
        for _ in range(steps):
            step()
        total += TASK_MIX[task] * (clock() - started) / steps
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--steps", type=int, default=6, help="timed steps per batch kind")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall seconds, or the process's CPU seconds (use with --threads 1 on a busy machine)",
    )
    parser.add_argument(
        "--precision",
        choices=("bf16", "fp32"),
        action="append",
        help="measure only these (repeatable; default both; on a CPU without native bf16, fp32)",
    )
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"machine: {detect_hardware().describe()}; clock: {args.clock}, threads: {torch.get_num_threads()}"
    )
    setups = {}
    for key, (frozen, length, cached) in SETUPS.items():
        encoder = build_encoder(EncoderConfig(freeze_layers=frozen)).train()
        if cached:
            encoder.cache_frozen_prefix(frozen)
        optimizer = torch.optim.AdamW(
            [p for p in encoder.parameters() if p.requires_grad], lr=1e-5, fused=True
        )
        setups[key] = (encoder, optimizer, length)
    for precision in args.precision or ("bf16", "fp32"):
        best: dict[str, float] = {}
        for _ in range(2):  # interleaved: every set-up, then again; the faster of each pair counts
            for key, (encoder, optimizer, length) in setups.items():
                seconds = mixed_step_seconds(
                    encoder, optimizer, length, precision == "bf16", args.steps, clock
                )
                best[key] = min(best.get(key, seconds), seconds)
        print(
            f"{precision}: "
            + ", ".join(
                f"{key} {best[key] * 1e3:.0f} ms/step ({best[key] / best['old']:.2f}x old)"
                for key in SETUPS
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
