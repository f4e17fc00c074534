"""Settling writes: remove the chunks of every generation a write left behind, however it ended.

Before a write (ingest or delete) touches a document it leaves a cleanup marker for each
generation it may orphan: the one it writes (``new``) and the one it replaces (``old``); see
store/base.py. Settling reads the documents' records, removes the chunks of each marked
generation that is not live, then removes the markers. It runs:

- when a write ends, whether it succeeded, failed or was cancelled (shielded from cancellation);
- when a retry meets a document's ``old`` markers (an ``old`` generation that is no longer live
  never becomes live again, so its chunks can go at once);
- from the sweeper, for markers older than the grace period (sweeper.py): what a crashed or
  disconnected writer left.

If settling itself fails, the markers stay, and a retry or the sweeper finishes the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .store import Marker

if TYPE_CHECKING:
    from .core import KnowledgeCore

T = TypeVar("T")


@dataclass(frozen=True)
class Settled:
    records: dict[str, dict[str, Any]]  # the documents' records as settling found them
    dead: list[int]  # generations whose chunks were removed
    removed_chunks: int  # counted only when asked


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


async def settle(
    core: KnowledgeCore, namespace: str, markers: list[Marker], *, count: bool = False
) -> Settled:
    """Remove chunks of the marked generations that are not live, then the markers.

    Only pass markers whose writer is done (its own, ``old`` ones, or ones past the grace period).
    """
    store = core.store
    records = await core.run_store(store.get_docs, namespace, [m.doc_id for m in markers])
    dead = [m.generation for m in markers if records.get(m.doc_id, {}).get("generation") != m.generation]
    removed = await core.run_store(store.count_generations, namespace, dead) if count and dead else 0
    await core.run_store(store.delete_generations, namespace, dead)
    await core.run_store(store.delete_markers, markers)
    return Settled(records, dead, removed)


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


async def repair(core: KnowledgeCore, namespace: str, doc_ids: list[str]) -> list[str]:
    """Finish what an earlier, interrupted write of these documents left (their markers).

    Returns the ids of documents that had dead chunks removed.
    """
    store = core.store
    markers = await core.run_store(store.get_markers, namespace, doc_ids)
    if not markers:
        return []
    records = await core.run_store(store.get_docs, namespace, doc_ids)
    dead, done = finished(markers, {d: r.get("generation") for d, r in records.items()})
    await core.run_store(store.delete_generations, namespace, [m.generation for m in dead])
    await core.run_store(store.delete_markers, dead + done)
    return sorted({m.doc_id for m in dead})
