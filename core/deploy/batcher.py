"""Micro-batching: requests that arrive together are predicted together.

One worker takes the first waiting request, everything queued behind it (up to
``max_rows`` rows) and then runs them as one batch in a worker thread: the event loop keeps
accepting requests while the model works, and the next batch gathers meanwhile. When the
last batch held several requests (clients are concurrent), it also waits up to
``max_wait_ms`` for more, so that clients answered together and sending again together
land in one batch; a lone client never waits.
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


class MicroBatcher:
    """Collects :class:`Job`s into batches of at most ``max_rows`` rows for ``handler``."""

    def __init__(self, handler: Handler, max_rows: int = 256, max_wait_ms: float = 5.0) -> None:
        self.handler = handler
        self.max_rows = max_rows
        self.max_wait = max_wait_ms / 1000.0
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
        """Queue ``frame`` for ``tasks``; its prediction columns once its batch has run."""
        job = Job(tuple(tasks), frame, asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def _gather(self) -> list[Job]:
        batch = [await self._queue.get()]
        rows = len(batch[0].frame)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.max_wait if self._last_jobs > 1 else 0.0)
        while rows < self.max_rows:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
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
                    continue  # the client went away
                if isinstance(result, Exception):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
