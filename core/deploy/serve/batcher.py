"""Micro-batching with a bounded queue: requests that arrive together are predicted together.

One worker takes the first waiting request, everything queued behind it (up to
``max_rows`` rows) and then runs them as one batch in a worker thread: the event loop keeps
accepting requests while the model works, and the next batch gathers meanwhile. When the
last batch held several requests (clients are concurrent), it also waits up to
``max_wait_ms`` for more, so that clients answered together and sending again together
land in one batch; a lone client never waits.

At most ``max_queue`` requests wait for (or are in) the model at once: one more is refused
at once with :class:`QueueFull` instead of growing memory and everyone's latency. A request
waits ``timeout`` seconds at most for its predictions (:class:`TimeoutError`); one that gave
up is dropped from the queue, or its rows' results discarded if its batch already runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Job:
    """One request: its tasks and rows, and the future its result goes to."""

    tasks: tuple[str, ...]
    frame: pd.DataFrame
    future: asyncio.Future = field(repr=False)


Handler = Callable[[Sequence[Job]], Sequence["pd.DataFrame | Exception"]]
"""Predicts a batch of jobs; one result (or the exception that job raised) per job."""


class QueueFull(Exception):
    """``max_queue`` requests are already waiting: this one is refused, to be retried later."""


class MicroBatcher:
    """Collects :class:`Job`s into batches of at most ``max_rows`` rows for ``handler``."""

    def __init__(
        self,
        handler: Handler,
        max_rows: int = 256,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        timeout: float | None = None,
    ) -> None:
        self.handler = handler
        self.max_rows = max_rows
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.timeout = timeout
        self.pending = 0  # requests admitted and not yet answered
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="shopmtl-predict"
        )
        self._worker: asyncio.Task | None = None
        self._last_jobs = 0  # requests in the last batch

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop taking batches; requests still queued get an error instead of hanging."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, tasks: Sequence[str], frame: pd.DataFrame) -> pd.DataFrame:
        """Queue ``frame`` for ``tasks``; its prediction columns once its batch has run.

        Raises :class:`QueueFull` when ``max_queue`` requests are pending, and
        :class:`asyncio.TimeoutError` when the answer takes over ``timeout`` seconds.
        """
        if self.pending >= self.max_queue:
            raise QueueFull(f"{self.pending} requests are already waiting")
        job = Job(tuple(tasks), frame, asyncio.get_running_loop().create_future())
        self.pending += 1
        try:
            self._queue.put_nowait(job)
            # On timeout wait_for cancels the future: the worker then skips the job.
            return await asyncio.wait_for(job.future, self.timeout)
        finally:
            self.pending -= 1

    async def _next(self, deadline: float | None) -> Job | None:
        """The next job not given up by its client; ``None`` once the loop time ``deadline`` passes."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue.empty():
                job = self._queue.get_nowait()
            elif deadline is None:
                job = await self._queue.get()
            elif deadline <= loop.time():
                return None
            else:
                try:
                    job = await asyncio.wait_for(self._queue.get(), deadline - loop.time())
                except asyncio.TimeoutError:
                    return None
            if not job.future.done():
                return job

    async def _gather(self) -> list[Job]:
        first = await self._next(None)
        assert first is not None  # noqa: S101 -- no deadline: _next waits for a job
        batch, rows = [first], len(first.frame)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.max_wait if self._last_jobs > 1 else 0.0)
        while rows < self.max_rows:
            job = await self._next(deadline)
            if job is None:
                break
            batch.append(job)
            rows += len(job.frame)
        self._last_jobs = len(batch)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            try:
                results = await loop.run_in_executor(self._executor, self.handler, batch)
            except Exception as error:  # noqa: BLE001 -- the handler failed as a whole: every job gets it
                results = [error] * len(batch)
            for job, result in zip(batch, results):
                if job.future.done():
                    continue  # the client went away or gave up
                if isinstance(result, Exception):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
