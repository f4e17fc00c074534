"""Admission control: a bounded number of concurrent searches and ingests per replica.

A request beyond the bound waits up to ``queue_wait_s`` for a slot, then is refused with
Overloaded (429 / RESOURCE_EXHAUSTED) carrying a retry-after hint, before it has done anything:
a refused request changes nothing, so retrying it is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from knowledge_service.core.errors import Overloaded


class Gate:
    def __init__(self, name: str, limit: int, queue_wait_s: float, retry_after_s: float) -> None:
        self.name = name
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._wait = queue_wait_s
        self._retry_after = retry_after_s
        self.waiting = 0
        self.active = 0

    @contextlib.asynccontextmanager
    async def enter(self) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            if self._slots.locked():  # (a free slot is taken at once, even with no wait allowed)
                await asyncio.wait_for(self._slots.acquire(), timeout=self._wait)
            else:
                await self._slots.acquire()
        except TimeoutError:
            raise Overloaded(
                f"too many concurrent {self.name} requests (limit {self.limit}); retry after "
                f"{self._retry_after:g} s",
                retry_after_s=self._retry_after,
            ) from None
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._slots.release()


@contextlib.asynccontextmanager
async def admitted(gate: Gate, refusal: str) -> AsyncIterator[None]:
    """Hold a slot of ``gate``; when none is free in time, Overloaded with ``refusal`` as its reason."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(gate.enter())
        except Overloaded as exc:
            raise Overloaded(
                f"{refusal}; retry after {exc.retry_after_s:g} s", retry_after_s=exc.retry_after_s
            ) from None
        yield
