"""Settling writes: remove the chunks of every generation a write left behind, however it ended.

Before a write (ingest or delete) touches a document it leaves a cleanup marker for each
generation it may orphan: the one it writes (``new``) and the one it replaces (``old``); see
storage/points.py. Settling reads the documents' records, removes the chunks of each marked
generation that is not live, then removes the markers. It runs:

- when a write ends, whether it succeeded, failed or was cancelled (``settle``, shielded from
  cancellation);
- for markers another writer left (``finish``): when a retry meets a document's markers, and from
  the sweeper (sweeper.py). Only markers whose writer is certainly done are settled: an ``old``
  generation that is no longer live never becomes live again, so its chunks can go at once; a
  ``new`` one only once the marker is older than the grace period.

If settling itself fails, the markers stay, and a retry or the sweeper finishes the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from knowledge_service.storage import Marker
from knowledge_service.storage.runner import AsyncStore

T = TypeVar("T")


_running: set[asyncio.Future[Any]] = set()  # shielded work still going on (see drain)


async def shielded(aw: Awaitable[T]) -> T:
    """Run ``aw`` to completion even if the caller is cancelled meanwhile (it then goes on alone)."""
    task = asyncio.ensure_future(aw)
    _running.add(task)
    task.add_done_callback(_running.discard)
    return await asyncio.shield(task)


async def drain(timeout: float) -> None:
    """Wait (up to ``timeout``) for shielded cleanups that outlived their cancelled callers."""
    if pending := [t for t in _running if not t.done()]:
        await asyncio.wait(pending, timeout=timeout)


async def settle(store: AsyncStore, namespace: str, markers: list[Marker]) -> dict[str, dict[str, Any]]:
    """Remove chunks of the marked generations that are not live, then the markers; return the
    documents' records as settling found them.

    Only for a write's own markers, once it has ended: it settles them whatever their role or age.
    """
    records = await store.get_docs(namespace, [m.doc_id for m in markers])
    dead = [m.generation for m in markers if records.get(m.doc_id, {}).get("generation") != m.generation]
    await store.delete_generations(namespace, dead)
    await store.delete_markers(markers)
    return records


def finished(
    markers: list[Marker], live: dict[str, int | None], older_than: float | None = None
) -> tuple[list[Marker], list[Marker]]:
    """Of markers whose writer may still run, those certainly done: (dead, done).

    ``dead``: the generation's chunks can go, then the marker (an ``old`` generation no longer
    live never returns; any other only once older than ``older_than``). ``done``: only the marker
    goes (a ``new`` generation that became live; any other once older than ``older_than``).
    """
    expired = [older_than is not None and m.created_at < older_than for m in markers]
    dead = [
        m
        for m, old in zip(markers, expired, strict=True)
        if live.get(m.doc_id) != m.generation and (m.role == "old" or old)
    ]
    done = [
        m
        for m, old in zip(markers, expired, strict=True)
        if live.get(m.doc_id) == m.generation and (m.role == "new" or old)
    ]
    return dead, done


async def finish(
    store: AsyncStore,
    namespace: str,
    markers: list[Marker],
    older_than: float | None = None,
    *,
    count: bool = False,
) -> tuple[list[Marker], int]:
    """Settle the markers (of any writer) that ``finished`` says are done; leave the others.

    Returns the markers whose chunks were removed, and how many chunks that was when ``count``.
    """
    records = await store.get_docs(namespace, [m.doc_id for m in markers])
    dead, done = finished(markers, {d: r.get("generation") for d, r in records.items()}, older_than)
    generations = [m.generation for m in dead]
    removed = await store.count_generations(namespace, generations) if count else 0
    await store.delete_generations(namespace, generations)
    await store.delete_markers(dead + done)
    return dead, removed


async def repair(store: AsyncStore, namespace: str, doc_ids: list[str]) -> list[str]:
    """Finish what an earlier, interrupted write of these documents left (their markers).

    Returns the ids of documents that had dead chunks removed.
    """
    markers = await store.get_markers(namespace, doc_ids)
    if not markers:
        return []
    dead, _ = await finish(store, namespace, markers)
    return sorted({m.doc_id for m in dead})
