"""Dynamic micro-batching: concurrent requests for the same work run together, as TEI and Infinity
batch their model calls.

A ``MicroBatcher`` runs up to ``parallel`` batches at a time through an async ``run_batch`` (which
hands the work to a thread). A request that finds a batch slot free starts a batch at once;
requests that arrive while every slot runs wait and go together in the next batch, up to
``max_batch``. When the last batch held more than one request (there is concurrent load), the next
one also waits ``window_ms`` for staggered arrivals to join it. So a lone request never waits for
the window, and no request waits behind another for longer than the batch in progress. A cancelled
request leaves its batch before it runs; a failed batch fails each of its requests, and the next
batch runs as usual.

More than one slot is for work that cannot share a batch (``max_batch=1``, a model whose results
depend on their batch-mates): the cores are then filled by running requests side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """``await submit(item)`` gives ``item``'s result, computed in a batch with concurrent items."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_batch: int,
        window_ms: float = 0.0,
        parallel: int = 1,
    ) -> None:
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.parallel = parallel
        self._window_s = window_ms / 1000
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._draining: set[asyncio.Task[None]] = set()  # at most ``parallel``, each one batch at a time
        self._last = 1  # size of the last batch: more than one means concurrent load
        self.batches = 0  # counters, for metrics and tests
        self.items = 0

    def queued(self) -> int:
        """Requests waiting for a batch (not counting the batch that runs)."""
        return sum(not f.done() for _, f in self._waiting)

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._draining) < self.parallel:
            self._draining.add(asyncio.create_task(self._drain()))
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                if self._last > 1 and self._window_s:
                    await asyncio.sleep(self._window_s)  # under load: let staggered arrivals join
                batch = [(i, f) for i, f in self._waiting[: self.max_batch] if not f.done()]
                del self._waiting[: self.max_batch]
                if batch:
                    await self._run(batch)
                self._last = len(batch)
        except BaseException:  # the drain itself was cancelled (shutdown): so is what waits
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()
            raise
        finally:  # at once, not in a done callback: a request queued after this sees the free slot
            self._draining.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run_batch([item for item, _ in batch])
        except Exception as exc:  # every request of the batch hears of the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        self.batches += 1
        self.items += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
