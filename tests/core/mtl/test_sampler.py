"""The task sampler: probabilities, reproducible draws, resumable, processes in step on their own shares."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shopmtl.core.config import SamplerConfig
from shopmtl.core.data.partition import Shard
from shopmtl.core.mtl.sampler import TaskSampler, task_probabilities

# ----------------------------------------------------------------------------- sampler


SIZES = {"small": 100, "big": 400}


def make_sampler(sizes, config, batch_size, seed, process_index=0, num_processes=1) -> TaskSampler:
    """A sampler as the trainer builds it: probabilities from the whole tasks' sizes (the config's
    built-in sampler), rows from process ``process_index``'s share of each task."""
    shard = Shard(process_index, num_processes)
    return TaskSampler(
        {n: shard.size(rows) for n, rows in sizes.items()},
        task_probabilities(sizes, config),
        batch_size,
        seed,
        process_index,
    )


def test_task_probabilities():
    proportional = task_probabilities(SIZES, SamplerConfig(kind="proportional"))
    assert proportional == pytest.approx({"small": 0.2, "big": 0.8})
    temperature = task_probabilities(SIZES, SamplerConfig(kind="temperature", temperature=2.0))
    assert temperature == pytest.approx({"small": 1 / 3, "big": 2 / 3})  # sqrt(100) : sqrt(400)
    assert task_probabilities(
        SIZES, SamplerConfig(kind="temperature", temperature=1.0)
    ) == pytest.approx(proportional)
    assert task_probabilities(SIZES, SamplerConfig(kind="uniform")) == pytest.approx(
        {"small": 0.5, "big": 0.5}
    )
    high = task_probabilities(SIZES, SamplerConfig(kind="temperature", temperature=100.0))
    assert 0.49 < high["small"] < 0.5  # a high temperature approaches uniform
    assert task_probabilities(
        {"empty": 0, "one": 1}, SamplerConfig(kind="proportional")
    ) == pytest.approx(
        {"empty": 0.5, "one": 0.5}
    )  # an empty task is counted as one row, never divides by zero


def test_sampler_draws_follow_the_probabilities():
    sampler = make_sampler(SIZES, SamplerConfig(kind="temperature", temperature=2.0), 4, seed=0)
    names = [sampler.next()[0] for _ in range(3000)]
    assert names.count("small") / len(names) == pytest.approx(1 / 3, abs=0.03)


def test_sampler_is_deterministic_and_resumable():
    config = SamplerConfig(kind="temperature")

    def draws(sampler, n):
        return [(name, index.tolist()) for name, index in (sampler.next() for _ in range(n))]

    first = draws(make_sampler(SIZES, config, 8, seed=5), 120)
    assert first == draws(make_sampler(SIZES, config, 8, seed=5), 120)
    assert first != draws(make_sampler(SIZES, config, 8, seed=6), 120)

    sampler = make_sampler(SIZES, config, 8, seed=5)
    draws(sampler, 70)
    resumed = make_sampler(SIZES, config, 8, seed=5)
    resumed.load_state_dict(
        json.loads(json.dumps(sampler.state_dict()))
    )  # as trainer_state.json stores it
    assert draws(resumed, 50) == first[70:]


def test_processes_train_in_step_on_disjoint_shares():
    """Two processes: the same task each micro-batch, the same epochs and cursors (so one saved
    sampler state resumes both), every row of a share once per epoch, and shares that
    together hold every row exactly once (up to the wrap-around of the last share)."""
    sizes = {"a": 100, "b": 37}
    config = SamplerConfig(kind="uniform")
    shards = [Shard(i, 2) for i in range(2)]
    processes = [
        make_sampler(sizes, config, 8, seed=3, process_index=i, num_processes=2) for i in range(2)
    ]
    for rows in sizes.values():
        owned = [set(s.rows(rows).tolist()) for s in shards]
        assert owned[0] | owned[1] == set(range(rows))
        assert (
            len(owned[0] & owned[1]) == 2 * shards[0].size(rows) - rows
        )  # only the wrapped-around rows
    used: dict[tuple[int, str, int], list[int]] = {}
    for _ in range(300):
        drawn = [p.next() for p in processes]
        assert drawn[0][0] == drawn[1][0]  # every process trains the same task in a micro-batch
        name = drawn[0][0]
        assert processes[0].state_dict() == processes[1].state_dict()
        for rank, (_, local) in enumerate(drawn):
            assert len(local) == 8 and all(
                0 <= r < shards[rank].size(sizes[name]) for r in local.tolist()
            )
            global_rows = shards[rank].rows(sizes[name])[
                local
            ]  # positions in the whole train split
            used.setdefault((rank, name, processes[rank].epoch[name]), []).extend(
                global_rows.tolist()
            )
    assert max(epoch for _, _, epoch in used) > 1
    for rows in used.values():
        assert len(rows) == len(set(rows))  # no row twice in an epoch
    full = [
        rows
        for (rank, name, epoch), rows in used.items()
        if name == "a" and epoch < processes[rank].epoch["a"]
    ]
    assert full and all(
        len(rows) == 48 for rows in full
    )  # a share of 50 rows -> 6 batches of 8, the tail dropped
    assert not np.array_equal(
        processes[0]._order("a"), processes[1]._order("a")
    )  # each share shuffled its own way


def test_one_process_owns_every_row_in_order():
    """One process: the share is the whole split, in order, and the sampler's stream is shard 0's."""
    assert Shard().rows(7).tolist() == list(range(7))
    assert Shard().size(0) == 0 and Shard(1, 2).rows(0).tolist() == []
    one = make_sampler(SIZES, SamplerConfig(), 8, seed=4)
    first_of_two = make_sampler(
        {n: 2 * r for n, r in SIZES.items()},
        SamplerConfig(),
        8,
        seed=4,
        process_index=0,
        num_processes=2,
    )
    assert [(n, i.tolist()) for n, i in (one.next() for _ in range(40))] == [
        (n, i.tolist()) for n, i in (first_of_two.next() for _ in range(40))
    ]
    with pytest.raises(ValueError, match="shard 2 of 2"):
        Shard(2, 2)


@pytest.mark.parametrize(("rows", "num_processes"), [(5, 1), (12, 2), (5, 2), (1, 2)])
def test_sampler_task_smaller_than_a_batch_wraps_to_full_batches(rows, num_processes):
    """Every process gets a full ``batch_size`` batch, even from a task whose share is smaller
    than one batch (the sampler wraps around its share)."""
    processes = [
        make_sampler(
            {"tiny": rows}, SamplerConfig(), 8, seed=0, process_index=i, num_processes=num_processes
        )
        for i in range(num_processes)
    ]
    for _ in range(3):
        for rank, sampler in enumerate(processes):
            name, index = sampler.next()
            assert name == "tiny" and len(index) == 8, (rank, index)
            assert all(0 <= r < Shard(rank, num_processes).size(rows) for r in index.tolist())
