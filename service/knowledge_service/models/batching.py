"""Dynamic micro-batching of query encodes: concurrent queries go through the model together.

One thread owns the query model. It takes the first waiting query at once; queries that arrive
while a batch is encoded wait for that batch and go together in the next one, up to
``max_batch``. When the last batch held more than one query (the replica is under concurrent
load), the thread also waits up to ``window_ms`` after the first query for others to join, so that
staggered arrivals share a forward pass. A lone query never waits for the window, and no query
waits behind another for longer than the batch in progress (which that other query shares).

A model whose vectors depend on their batch-mates (``batch_invariant`` false: dynamic int8) gets
its queries one at a time, so that a query's answer never depends on what else was asked with it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import Future

from knowledge_service.models.base import DenseModel

_Item = tuple[str, "Future[list[float]]"]


class QueryBatcher:
    """Encodes queries in micro-batches on one thread; ``await encode(text)`` gives one vector."""

    def __init__(
        self, model: DenseModel, *, window_ms: float, max_batch: int, name: str = "query-model"
    ) -> None:
        self._model = model
        self._window_s = window_ms / 1000
        self._max_batch = max_batch if model.batch_invariant else 1
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self.batches = 0  # counters, for metrics and tests
        self.encoded = 0

    async def encode(self, text: str) -> list[float]:
        future: Future[list[float]] = Future()
        self._queue.put((text, future))
        return await asyncio.wrap_future(future)  # cancelling the caller cancels its place in line

    def queued(self) -> int:
        """Queries waiting for a batch (not counting the batch being encoded)."""
        return self._queue.qsize()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        last = 1
        while (first := self._queue.get()) is not None:
            batch, stop = self._gather(first, wait=self._window_s if last > 1 else 0.0)
            batch = [(t, f) for t, f in batch if f.set_running_or_notify_cancel()]
            if batch:
                self._encode(batch)
            last = len(batch)
            if stop:
                return

    def _gather(self, first: _Item, wait: float) -> tuple[list[_Item], bool]:
        """The first query and those already waiting (or arriving within ``wait``)."""
        batch = [first]
        until = time.monotonic() + wait
        while len(batch) < self._max_batch:
            left = until - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _encode(self, batch: list[_Item]) -> None:
        try:
            vectors = self._model.encode([text for text, _ in batch])
        except BaseException as exc:  # every caller hears of the failure
            for _, future in batch:
                future.set_exception(exc)
            return
        self.batches += 1
        self.encoded += len(batch)
        for (_, future), vector in zip(batch, vectors, strict=True):
            future.set_result(vector)
