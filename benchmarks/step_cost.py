"""What a training step of the default run costs, before and after issue #16, side by side.

The default run's steps are MiniLM forward+backward passes on four kinds of batch (the task
mix of ``core/defaults/default.yaml``): short product descriptions (price_bin, sales),
customer histories (user_profile) and 4 histories plus ~32 descriptions (recommend). This
script times one step of each kind for two encoder set-ups in the same process, interleaved,
and prints the mix-weighted step time and the ratio, in bf16 and in fp32:

* ``old``: every layer trains, texts up to 128 tokens (the default before issue #16);
* ``new``: embeddings and the lowest 2 layers frozen, texts up to 64 tokens (the default now).

Ratios measured side by side in one run are what compare across machines (an AVX2 laptop
runs both slower, but in about the same ratio). Random token ids: the cost depends on the
shapes, not on the words. Run from the repository root with the virtualenv active::

    python benchmarks/step_cost.py                 # torch's default threads
    python benchmarks/step_cost.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch

from shopmtl.core.config import EncoderConfig
from shopmtl.core.engine.hardware import detect_hardware
from shopmtl.core.model.encoder import build_encoder

# Share of batches per task in the default run (sampler temperature 3, price_bin weight 5).
TASK_MIX = {"price_bin": 0.52, "sales": 0.20, "user_profile": 0.08, "recommend": 0.20}
SETUPS = {"old": (0, 128), "new": (2, 64)}  # (encoder.freeze_layers, encoder.max_length)


def batch_shapes(max_length: int) -> dict[str, list[tuple[int, int]]]:
    """Each task's padded token tensors per step (a recommend batch has two length buckets)."""
    return {"price_bin": [(32, 12)], "sales": [(32, 12)], "user_profile": [(32, max_length)],
            "recommend": [(4, max_length), (32, 10)]}


def mixed_step_seconds(encoder: torch.nn.Module, optimizer: torch.optim.Optimizer, max_length: int,
                       bf16: bool, steps: int) -> float:
    """Mix-weighted mean wall seconds of a training step (forward, backward, AdamW)."""
    total = 0.0
    for task, shapes in batch_shapes(max_length).items():
        def step() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = sum(encoder(torch.randint(1000, 20000, s), torch.ones(s, dtype=torch.long)).sum() for s in shapes)
            out.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        step(), step()  # one-off allocations and kernel selection for these shapes
        started = time.perf_counter()
        for _ in range(steps):
            step()
        total += TASK_MIX[task] * (time.perf_counter() - started) / steps
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per batch kind")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"machine: {detect_hardware().describe()}")
    setups = {}
    for key, (frozen, length) in SETUPS.items():
        encoder = build_encoder(EncoderConfig(freeze_layers=frozen)).train()
        optimizer = torch.optim.AdamW([p for p in encoder.parameters() if p.requires_grad], lr=1e-5, fused=True)
        setups[key] = (encoder, optimizer, length)
    for precision in ("bf16", "fp32"):
        best: dict[str, float] = {}
        for _ in range(2):  # interleaved: old, new, old, new; the faster of each pair counts
            for key, (encoder, optimizer, length) in setups.items():
                seconds = mixed_step_seconds(encoder, optimizer, length, precision == "bf16", args.steps)
                best[key] = min(best.get(key, seconds), seconds)
        print(f"{precision}: old {best['old'] * 1e3:.0f} ms/step, new {best['new'] * 1e3:.0f} ms/step, "
              f"new/old {best['new'] / best['old']:.2f}", flush=True)


if __name__ == "__main__":
    main()
