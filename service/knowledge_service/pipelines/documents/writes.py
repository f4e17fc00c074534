"""What every document write goes through: the namespace's write lock, and index-version bumps
before and after it, so no cached result from before a write is served once it began."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from knowledge_service.pipelines.documents.settle import shielded
from knowledge_service.storage.runner import AsyncStore


@dataclass
class IndexVersion:
    value: int = 0


class Writes:
    """Per-namespace write locks (per process) and the index-version bracket."""

    def __init__(self, store: AsyncStore) -> None:
        self._store = store
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, namespace: str) -> asyncio.Lock:
        return self._locks.setdefault(namespace, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def index_write(self, namespace: str) -> AsyncIterator[IndexVersion]:
        """Bracket a write with index version bumps: one before it starts, one after it ends
        (however it ends). No cache entry made before the write is reachable once it began, and
        none made while it ran (which may show it half done) is reachable once it ended."""
        await self._store.bump_index_version(namespace)
        version = IndexVersion()
        try:
            yield version
        finally:
            version.value = await shielded(self._store.bump_index_version(namespace))
