"""Work done once, by the main process, and handed to every process.

A task's classical prior is fitted on every train row (:mod:`shopmtl.core.data.priors`);
each process fitting it itself would read the whole train split once per process and
repeat the same deterministic work. :func:`on_main_shared` runs it on the main process
and broadcasts the result -- or the error, so no process waits for ever on a peer that
failed -- to every process of every machine.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import TypeVar

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

T = TypeVar("T")


def on_main_shared(accelerator: Accelerator) -> Callable[[Callable[[], T]], T]:
    """A runner: ``runner(work)`` calls ``work()`` on the main process only and returns its result on
    every process (or raises its error on every process). One process: ``work()`` itself.

    Every process must call the runner at the same point (it is a collective operation).
    """

    def run(work: Callable[[], T]) -> T:
        if accelerator.num_processes == 1:
            return work()
        outcome: list[object] = [None]
        if accelerator.is_main_process:
            try:
                outcome = [("ok", work())]
            except Exception as error:  # noqa: BLE001 -- handed to every process, raised there
                outcome = [
                    (
                        "error",
                        error
                        if _picklable(error)
                        else RuntimeError(f"{type(error).__name__}: {error}"),
                    )
                ]
        broadcast_object_list(outcome, from_process=0)
        kind, value = outcome[0]  # type: ignore[misc]
        if kind == "error":
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    return run


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 -- any failure means "send a plain error instead"
        return False
    return True
