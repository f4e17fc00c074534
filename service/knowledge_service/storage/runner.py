"""The one way the service calls storage: async wrappers that run each blocking call in a thread
pool this module owns, off the event loop (Qdrant Edge holds the GIL while it works).

A store call cannot be stopped once its thread runs it, so when the caller is cancelled the
wrapper waits for the call to end before passing the cancellation on: whatever cleanup runs next
sees its effect (a write never lands after the cleanup that should remove it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from knowledge_service.core.batching import MicroBatcher
from knowledge_service.schemas.filters import Filter
from knowledge_service.storage.base import Store
from knowledge_service.storage.meta import MetaStore
from knowledge_service.storage.points import ChunkPoint, Hit, Marker, QueryPlan

T = TypeVar("T")


class StoreRunner:
    """A thread pool for blocking storage calls, with cancellation that waits for the call."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="store")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        future = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await future
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class AsyncStore:
    """The document store (:class:`~knowledge_service.storage.base.Store`) with async methods."""

    def __init__(self, store: Store, runner: StoreRunner, *, max_batch: int = 16) -> None:
        self._store = store
        self._runner = runner
        self.backend = store.backend
        # concurrent searches' engine queries run as one batch (Edge: one planned query_batch)
        self._queries: MicroBatcher[QueryPlan, list[Hit]] = MicroBatcher(
            lambda plans: self._runner.run(self._store.query_many, plans), max_batch=max_batch
        )

    async def query(self, plan: QueryPlan) -> list[Hit]:
        return await self._queries.submit(plan)

    async def upsert_chunks(self, points: list[ChunkPoint]) -> None:
        await self._runner.run(self._store.upsert_chunks, points)

    async def ping(self) -> None:
        await self._runner.run(self._store.ping)

    async def maintain(self) -> bool:
        return await self._runner.run(self._store.maintain)

    async def close(self) -> None:
        await self._runner.run(self._store.close)

    async def get_docs(self, namespace: str, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return await self._runner.run(self._store.get_docs, namespace, list(doc_ids))

    async def swap_doc(self, record: dict[str, Any], expected_generation: int | None) -> None:
        await self._runner.run(self._store.swap_doc, record, expected_generation)

    async def delete_docs_if(self, namespace: str, expected: dict[str, int]) -> None:
        await self._runner.run(self._store.delete_docs_if, namespace, expected)

    async def find_docs(
        self, namespace: str, flt: Filter | None, limit: int, offset: Any = None
    ) -> tuple[list[dict[str, Any]], Any]:
        return await self._runner.run(self._store.find_docs, namespace, flt, limit, offset)

    async def count(self, namespace: str, kind: str, flt: Filter | None = None) -> int:
        return await self._runner.run(self._store.count, namespace, kind, flt)

    async def count_live_chunks(self, namespace: str, flt: Filter | None = None) -> int:
        return await self._runner.run(self._store.count_live_chunks, namespace, flt)

    async def delete_generations(self, namespace: str, generations: Iterable[int]) -> None:
        await self._runner.run(self._store.delete_generations, namespace, list(generations))

    async def count_generations(self, namespace: str, generations: Iterable[int]) -> int:
        return await self._runner.run(self._store.count_generations, namespace, list(generations))

    async def scan_chunks(self, limit: int, offset: Any = None) -> tuple[list[dict[str, Any]], Any]:
        return await self._runner.run(self._store.scan_chunks, limit, offset)

    async def put_markers(self, markers: Iterable[Marker]) -> None:
        await self._runner.run(self._store.put_markers, list(markers))

    async def delete_markers(self, markers: Iterable[Marker]) -> None:
        await self._runner.run(self._store.delete_markers, list(markers))

    async def get_markers(self, namespace: str, doc_ids: Iterable[str]) -> list[Marker]:
        return await self._runner.run(self._store.get_markers, namespace, list(doc_ids))

    async def all_markers(self, limit: int) -> list[Marker]:
        return await self._runner.run(self._store.all_markers, limit)

    async def get_index_version(self, namespace: str) -> int:
        known = self._store.peek_index_version(namespace)  # no thread hop when the store knows it
        if known is not None:
            return known
        return await self._runner.run(self._store.get_index_version, namespace)

    async def live_generations(self, namespace: str, doc_ids: list[str]) -> dict[str, int]:
        known = self._store.peek_generations(namespace, doc_ids)
        if known is not None:
            return known
        return await self._runner.run(self._store.live_generations, namespace, doc_ids)

    async def bump_index_version(self, namespace: str) -> int:
        return await self._runner.run(self._store.bump_index_version, namespace)


class AsyncMeta:
    """The meta store (profiles, namespace settings) with async methods, on the same pool."""

    def __init__(self, meta: MetaStore, runner: StoreRunner) -> None:
        self._meta = meta
        self._runner = runner

    async def get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        return await self._runner.run(self._meta.get, keys)

    async def put(self, records: dict[str, dict[str, Any]]) -> None:
        await self._runner.run(self._meta.put, records)

    async def scan(self, kind: str) -> list[dict[str, Any]]:
        return await self._runner.run(self._meta.scan, kind)

    async def insert_new(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        return await self._runner.run(self._meta.insert_new, key, record)

    async def put_newer(self, key: str, record: dict[str, Any], field: str) -> None:
        await self._runner.run(self._meta.put_newer, key, record, field)

    async def put_if(self, key: str, record: dict[str, Any], field: str, expected: Any) -> None:
        await self._runner.run(self._meta.put_if, key, record, field, expected)

    async def close(self) -> None:
        await self._runner.run(self._meta.close)
