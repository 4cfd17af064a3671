"""Which task each batch comes from, and which rows: reproducible from (seed, step)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from shopmtl.core.config import SamplerConfig
from shopmtl.core.mtl import builtin
from shopmtl.core.mtl.strategies import own, pick
from shopmtl.registry.spec import SamplerFactory


def task_probabilities(
    sizes: Mapping[str, int],
    config: SamplerConfig,
    samplers: Mapping[str, SamplerFactory] | None = None,
    sample_weights: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Sampling probability of each task, from the registered sampler ``config.kind``.

    ``samplers`` defaults to shopmtl's own (proportional, temperature, uniform); a run
    passes its :attr:`PluginSet.samplers`, which include plugins' samplers.
    ``sample_weights`` (``tasks.<name>.sample_weight``, default 1) multiply the sampler's
    probabilities before they are renormalised.
    """
    samplers = samplers if samplers is not None else own(builtin.register_samplers)
    factory = pick(samplers, config.kind, "sampler.kind", "sampler")
    probabilities = dict(factory(dict(sizes), config.sampler_options()))
    if set(probabilities) != set(sizes) or any(
        not np.isfinite(p) or p < 0 for p in probabilities.values()
    ):
        raise ValueError(
            f"sampler '{config.kind}' must return a probability >= 0 for each task, got {probabilities}"
        )
    probabilities = {
        name: p * float((sample_weights or {}).get(name, 1.0)) for name, p in probabilities.items()
    }
    total = sum(probabilities.values())
    if total <= 0:
        raise ValueError(
            f"sampler '{config.kind}' with tasks.<name>.sample_weight gave every task probability 0"
        )
    return {name: probabilities[name] / total for name in sizes}


def grouped_order(
    order: np.ndarray, keys: np.ndarray, run: int, rng: np.random.Generator
) -> np.ndarray:
    """Reorder shuffled rows so rows sharing a key come in runs of up to ``run`` rows.

    A batch then holds a few runs, so a text shared by a run (a customer's history in
    recommend) is encoded once for all of them. Runs are shuffled, so every batch still
    mixes several groups.
    """
    by_key = order[np.argsort(keys[order], kind="stable")]  # grouped, random within a group
    sorted_keys = keys[by_key]
    starts = np.r_[0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1]
    group = np.cumsum(np.r_[0, (sorted_keys[1:] != sorted_keys[:-1]).astype(np.int64)])
    position = np.arange(len(by_key)) - starts[group]
    chunk = np.unique(np.stack([group, position // run], axis=1), axis=0, return_inverse=True)[
        1
    ].reshape(-1)
    rank = rng.permutation(chunk.max() + 1)
    return by_key[np.argsort(rank[chunk], kind="stable")]


class TaskSampler:
    """Draws (task, row indices) for each micro-batch, from this process's rows.

    ``sizes`` are this process's train rows per task: all of them on one process, its
    :class:`~shopmtl.core.data.partition.Shard` of them when several processes train (shares
    are disjoint and all the same size). Every process draws the same task for a
    micro-batch (distributed training needs them in step) and ``batch_size`` rows of its
    own share. The whole schedule is a function of the seed, the ``shard`` index and the
    cursor state, so a resumed run continues exactly where it stopped; the cursor state is
    the same on every process, since the shares are equally large.
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        probabilities: Mapping[str, float],
        batch_size: int,
        seed: int,
        shard: int = 0,
        groups: Mapping[str, tuple[np.ndarray, int]] | None = None,
    ) -> None:
        self.names = list(sizes)
        self.sizes = dict(sizes)
        self.probabilities = dict(probabilities)
        self.batch_size = batch_size
        self.seed = seed
        self.shard = shard
        self.draws = 0  # micro-batches drawn so far
        self.cursor = dict.fromkeys(self.names, 0)  # rows consumed in the current epoch
        self.epoch = dict.fromkeys(self.names, 0)
        self._orders: dict[tuple[str, int], np.ndarray] = {}
        # task -> (group key per row, rows per run): rows sharing a key come in runs
        self.groups = dict(groups or {})

    def _order(self, name: str) -> np.ndarray:
        key = (name, self.epoch[name])
        if key not in self._orders:
            self._orders = {
                k: v for k, v in self._orders.items() if k[0] != name
            }  # keep one epoch per task
            # Shard 0 keeps the one-process stream, so a one-process run shuffles as it always did.
            stream = [self.seed, self.names.index(name), self.epoch[name]] + (
                [self.shard] if self.shard else []
            )
            rng = np.random.default_rng(stream)
            order = rng.permutation(self.sizes[name])
            if name in self.groups:
                order = grouped_order(order, *self.groups[name], rng)
            self._orders[key] = order
        return self._orders[key]

    def next(self) -> tuple[str, np.ndarray]:
        """The next micro-batch's task and this process's row indices (into its own rows)."""
        rng = np.random.default_rng(
            [self.seed, 1_000_003, self.draws]
        )  # the same task on every process
        name = self.names[
            rng.choice(len(self.names), p=[self.probabilities[n] for n in self.names])
        ]
        self.draws += 1
        if self.cursor[name] + self.batch_size > self.sizes[name] and self.cursor[name] > 0:
            self.epoch[name] += 1  # drop the ragged tail: every batch is a full one
            self.cursor[name] = 0
        order = self._order(name)
        start = self.cursor[name]
        index = order[start : start + self.batch_size]
        if len(index) < self.batch_size:  # a task smaller than one batch: wrap around
            index = order[np.arange(start, start + self.batch_size) % len(order)]
        self.cursor[name] += self.batch_size
        return name, index

    def state_dict(self) -> dict:
        return {"draws": self.draws, "cursor": dict(self.cursor), "epoch": dict(self.epoch)}

    def load_state_dict(self, state: Mapping) -> None:
        self.draws = int(state["draws"])
        self.cursor.update({k: int(v) for k, v in state["cursor"].items()})
        self.epoch.update({k: int(v) for k, v in state["epoch"].items()})
