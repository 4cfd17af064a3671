"""Where the hardware limit lies: training FLOP/s of the default encoder per batch shape.

`throughput.py` reports one figure for a whole joint run (mixed short and long batches).
This script explains it: it trains the default encoder (all-MiniLM-L6-v2, word embeddings
frozen as shopmtl does, bf16 autocast, fused AdamW) on random token ids for a few steps at
each batch shape and prints, per shape, the step time and the achieved FLOP/s against the
measured peak of a large bf16 matmul, by two counts:

* ``6N``: 6 x non-embedding parameters x tokens (the count issue #5 and throughput.py use);
* ``6N+attn``: plus attention's score and value matmuls, 12 x layers x length x width per
  token (PaLM, Chowdhery et al. 2022, appendix B), which 6N leaves out and which grow with
  the sequence length.

Run from the repository root with the virtualenv active::

    python benchmarks/mfu_shapes.py            # 1 torch thread, as throughput.py
    python benchmarks/mfu_shapes.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
from throughput_common import matmul_peak  # a sibling module: the same peak throughput.py divides by

SHAPES = ((32, 10), (64, 10), (128, 10), (256, 10), (32, 32), (32, 64), (32, 128), (64, 128))


def step_seconds(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: int, length: int, steps: int) -> float:
    """Mean wall seconds of one training step (forward, backward, AdamW) on a ``batch x length`` input."""
    ids = torch.randint(1000, 20000, (batch, length))
    mask = torch.ones_like(ids)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        hidden.float().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # one-off allocations and kernel selection
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as throughput.py)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per shape")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from transformers import AutoModel

    from shopmtl.core.model.encoder import resolve_encoder_path

    model = AutoModel.from_pretrained(resolve_encoder_path("sentence-transformers/all-MiniLM-L6-v2")).train()
    model.get_input_embeddings().weight.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)
    # As throughput.py: the pooler is not trained (shopmtl mean-pools the last layer).
    params = sum(p.numel() for name, p in model.named_parameters() if not name.startswith(("embeddings.", "pooler.")))
    layers, width = model.config.num_hidden_layers, model.config.hidden_size
    peak, _ = matmul_peak(torch.bfloat16, size=4096, repeats=5)
    print(f"all-MiniLM-L6-v2: {params / 1e6:.2f}M non-embedding parameters, {layers} layers x {width}; "
          f"bf16 matmul peak {peak / 1e9:.0f} GFLOP/s; {args.threads} thread(s)")
    print(f"{'batch':>5} {'length':>6} {'tokens':>6} {'ms/step':>8} {'GFLOP/s 6N':>11} {'of peak':>8} "
          f"{'GFLOP/s 6N+attn':>16} {'of peak':>8}")
    for batch, length in SHAPES:
        seconds = step_seconds(model, optimizer, batch, length, args.steps)
        tokens = batch * length
        dense = 6 * params * tokens / seconds
        with_attention = (6 * params + 12 * layers * length * width) * tokens / seconds
        print(f"{batch:>5} {length:>6} {tokens:>6} {seconds * 1e3:>8.0f} {dense / 1e9:>11.0f} {dense / peak:>8.2f} "
              f"{with_attention / 1e9:>16.0f} {with_attention / peak:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
