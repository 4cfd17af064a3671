"""Rows that share a text can be batched in runs, so the text is encoded once per run."""

from __future__ import annotations

import numpy as np
from shopmtl.core.data.partition import Shard
from shopmtl.core.mtl.sampler import TaskSampler, grouped_order


def test_grouped_order_is_a_permutation_in_runs_of_at_most_n():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 30, size=500)
    order = grouped_order(rng.permutation(500), keys, 8, rng)
    assert sorted(order.tolist()) == list(range(500))
    runs, length = [], 1
    for previous, current in zip(keys[order][:-1], keys[order][1:]):
        if current == previous:
            length += 1
        else:
            runs.append(length)
            length = 1
    runs.append(length)
    # two runs of one key may meet by chance, but never more than 2*8 rows in a row
    assert max(runs) <= 16
    # and runs are really grouped: far fewer key changes than in a random order
    assert len(runs) < 0.4 * 500


def test_grouped_batches_hold_few_distinct_texts_on_each_share():
    keys = np.repeat(np.arange(50), 20)  # 50 customers, 20 candidates each
    shares = []
    for rank in range(2):
        mine = Shard(rank, 2).rows(len(keys))
        sampler = TaskSampler(
            {"recommend": len(mine)},
            {"recommend": 1.0},
            32,
            seed=3,
            shard=rank,
            groups={"recommend": (keys[mine], 8)},
        )
        _, index = sampler.next()
        assert len(np.unique(keys[mine][index])) <= 6  # 32 rows from ~4 runs of 8, not 32 customers
        shares.append(set(mine[index].tolist()))
    assert (
        not shares[0] & shares[1]
    )  # contiguous shares: customers 0-24 on one process, 25-49 on the other
