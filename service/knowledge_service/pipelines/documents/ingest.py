"""Ingest: validate -> content-hash -> chunk -> encode -> mark -> write chunks -> flip -> settle.

A document's chunks carry a *generation* (random, unique per write); its record names the live
one, and search drops the rest. A re-ingest leaves cleanup markers for the generation it writes
and the one it replaces, writes the new generation's chunks, flips the record in one
compare-and-set write (only if it still names the generation this write replaces), then settles
(settle.py): the chunks of whichever generation is not live go, then the markers. A search sees
the old version or the new one, never neither or both; chunks of a write that failed or was
cancelled half-way, or lost to a concurrent write on another replica, are never visible, and are
removed by the settling, by a retry or by the sweeper. The namespace's index version moves before
the write and again after it, so no cached result from before the write is served once it began.

A batch is chunked and encoded in groups of ENCODE_GROUP documents, and each group is written
while the model encodes the next, so encoding and writing overlap.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from knowledge_service.core.errors import InvalidArgument, from_validation_error
from knowledge_service.core.threads import Worker
from knowledge_service.models.base import DenseModel, SparseModel
from knowledge_service.models.chunker import Chunker, passage_text
from knowledge_service.pipelines.documents.settle import repair, settle, shielded
from knowledge_service.pipelines.documents.writes import Writes
from knowledge_service.schemas.documents import DocumentIn, IngestRequest, IngestResponse, IngestResult
from knowledge_service.storage import ChunkPoint, Marker
from knowledge_service.storage.points import chunk_point_id
from knowledge_service.storage.runner import AsyncStore

log = logging.getLogger(__name__)
UPSERT_BATCH = 256
ENCODE_GROUP = 16  # documents encoded together; a group is written while the next one is encoded


@dataclass
class _Pending:
    pos: int
    doc: DocumentIn
    content_hash: str
    chunks: list[str]
    dense: list[list[float]] | None = None


def content_hash(doc: DocumentIn, index_params: list[object]) -> str:
    """Hash of what a document's points are made from: its content and the indexing settings."""
    blob = json.dumps([doc.title, doc.text, doc.metadata, index_params], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _validate(
    raw_docs: list[dict[str, Any]], index_params: list[object]
) -> tuple[list[IngestResult | None], list[_Pending]]:
    results: list[IngestResult | None] = [None] * len(raw_docs)
    valid: list[_Pending] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_docs):
        doc_id = str(raw.get("id", "")) if isinstance(raw, dict) else ""
        try:
            doc = DocumentIn.model_validate(raw)
        except ValidationError as exc:
            err = from_validation_error(exc).message
            results[i] = IngestResult(id=doc_id, status="failed", error=f"documents[{i}].{err}")
            continue
        if doc.id in seen:
            results[i] = IngestResult(
                id=doc.id,
                status="failed",
                error=f"documents[{i}].id: {doc.id!r} appears earlier in this batch; send it once",
            )
            continue
        seen.add(doc.id)
        valid.append(_Pending(i, doc, content_hash(doc, index_params), []))
    return results, valid


def _record(ns: str, p: _Pending, gen: int, now: float) -> dict[str, Any]:
    return {
        "kind": "doc",
        "namespace": ns,
        "doc_id": p.doc.id,
        "generation": gen,
        "content_hash": p.content_hash,
        "chunks": len(p.chunks),
        "title": p.doc.title,
        "text": p.doc.text,
        "metadata": p.doc.metadata,
        "updated_at": now,
    }


class Ingester:
    """Writes batches of documents: each document is created, updated, unchanged or failed alone."""

    def __init__(
        self,
        *,
        store: AsyncStore,
        writes: Writes,
        chunker: Chunker,
        dense: DenseModel,
        sparse: SparseModel,
        worker: Worker,
        index_params: list[object],
        marker_refresh_s: float,
    ) -> None:
        self._store = store
        self._writes = writes
        self._chunker = chunker
        self._dense = dense
        self._sparse = sparse
        self._worker = worker
        self._index_params = index_params
        self._marker_refresh_s = marker_refresh_s  # a long write refreshes its markers this often

    async def ingest(self, req: IngestRequest) -> IngestResponse:
        ns = req.namespace
        results, pending = _validate(req.documents, self._index_params)
        if not pending:
            raise InvalidArgument(
                "no valid document in the batch: " + "; ".join(r.error or "" for r in results if r),
                field="documents",
            )

        existing = await self._store.get_docs(ns, [p.doc.id for p in pending])
        todo, unchanged = [], []
        for p in pending:
            old = existing.get(p.doc.id)
            if old is not None and old.get("content_hash") == p.content_hash:
                results[p.pos] = IngestResult(id=p.doc.id, status="unchanged", chunks=old["chunks"])
                unchanged.append(p.doc.id)
            else:
                todo.append(p)
        if unchanged:  # a retry of a write whose cleanup failed: finish it
            await repair(self._store, ns, unchanged)

        groups = [todo[i : i + ENCODE_GROUP] for i in range(0, len(todo), ENCODE_GROUP)]
        ready = await self._encoded(groups[0], results) if groups else []  # a failure here: nothing written
        if not ready and len(groups) <= 1:
            index_version = await self._store.get_index_version(ns)
            return IngestResponse(results=[r for r in results if r is not None], index_version=index_version)
        async with self._writes.lock(ns), self._writes.index_write(ns) as version:
            await self._write_overlapped(ns, ready, groups[1:], results)
        return IngestResponse(results=[r for r in results if r is not None], index_version=version.value)

    async def _encoded(self, group: list[_Pending], results: list[IngestResult | None]) -> list[_Pending]:
        """Chunk and encode ``group`` on the model thread; the documents with text to index."""
        await self._worker.run(self._chunk_and_encode, group)
        for p in group:
            if not p.chunks:
                results[p.pos] = IngestResult(
                    id=p.doc.id, status="failed", error=f"documents[{p.pos}].text: no indexable text"
                )
        return [p for p in group if p.chunks]

    async def _write_overlapped(
        self,
        ns: str,
        ready: list[_Pending],
        groups: list[list[_Pending]],
        results: list[IngestResult | None],
    ) -> None:
        """Write each encoded group while the model encodes the next, so the stages overlap. Each
        document is written whole or not at all; if a later group cannot be encoded, the groups
        before it stand and its documents (and those after) are reported failed, to be sent again."""
        for i in range(len(groups) + 1):
            encoding = asyncio.ensure_future(self._encoded(groups[i], results)) if i < len(groups) else None
            try:
                if ready:
                    await self._write(ns, ready, results)  # a failure here propagates as it is
                if encoding is None:
                    return
                try:
                    ready = await encoding
                except Exception as exc:
                    log.exception("encoding part of an ingest batch failed")
                    for p in (p for g in groups[i:] for p in g):
                        results[p.pos] = IngestResult(
                            id=p.doc.id,
                            status="failed",
                            error=f"documents[{p.pos}]: could not be encoded "
                            f"({type(exc).__name__}); send it again",
                        )
                    return
            finally:
                if encoding is not None and not encoding.done():  # the write failed or was cancelled
                    encoding.cancel()

    def _chunk_and_encode(self, todo: list[_Pending]) -> None:
        passages: list[str] = []
        for p in todo:
            p.chunks = self._chunker.split(p.doc.text)
            passages.extend(passage_text(p.doc.title, c) for c in p.chunks)
        vectors = self._dense.encode(passages) if passages else []
        offset = 0
        for p in todo:
            p.dense = vectors[offset : offset + len(p.chunks)]
            offset += len(p.chunks)

    async def _write(self, ns: str, todo: list[_Pending], results: list[IngestResult | None]) -> None:
        """Mark, write the chunks, flip the records, settle (always, also on failure or cancellation)."""
        existing = await self._store.get_docs(ns, [p.doc.id for p in todo])
        now = time.time()
        points: list[ChunkPoint] = []
        records: list[tuple[dict[str, Any], int | None]] = []
        markers: list[Marker] = []
        writes: dict[str, tuple[int, _Pending, bool]] = {}  # doc id -> (generation, pending, replaces)
        for p in todo:
            old = existing.get(p.doc.id)
            if old is not None and old.get("content_hash") == p.content_hash:  # raced with a twin
                results[p.pos] = IngestResult(id=p.doc.id, status="unchanged", chunks=old["chunks"])
                continue
            old_gen = int(old["generation"]) if old else None
            gen = secrets.randbits(62)  # unique per write: concurrent writers never share chunk ids
            writes[p.doc.id] = (gen, p, old is not None)
            markers.append(Marker(ns, p.doc.id, gen, "new"))
            if old_gen is not None:
                markers.append(Marker(ns, p.doc.id, old_gen, "old"))
            points.extend(self._points(ns, p, gen, now))
            records.append((_record(ns, p, gen, now), old_gen))
        if not writes:
            return

        await self._store.put_markers(markers)  # before anything that could be left behind
        try:
            marked_at = time.time()
            for start in range(0, len(points), UPSERT_BATCH):
                if time.time() - marked_at > self._marker_refresh_s:  # a long write stays fresh
                    markers = [replace(m, created_at=time.time()) for m in markers]
                    await self._store.put_markers(markers)
                    marked_at = time.time()
                await self._store.upsert_chunks(points[start : start + UPSERT_BATCH])
            # The flip: each record moves to its new generation only if nobody else moved it meanwhile.
            for record, old_gen in records:
                await self._store.swap_doc(record, old_gen)
        finally:
            # Whatever happened, exactly the live generation of each document keeps its chunks.
            settled = await shielded(settle(self._store, ns, markers))
        for doc_id, (gen, p, replaces) in writes.items():
            if settled.get(doc_id, {}).get("generation") == gen:
                results[p.pos] = IngestResult(
                    id=doc_id, status="updated" if replaces else "created", chunks=len(p.chunks)
                )
            else:  # a concurrent ingest or delete of this document won: ours never became visible
                results[p.pos] = IngestResult(
                    id=doc_id,
                    status="failed",
                    error=f"documents[{p.pos}]: a concurrent ingest or delete of this document "
                    "won; send it again if yours should be the latest",
                )

    def _points(self, ns: str, p: _Pending, gen: int, now: float) -> list[ChunkPoint]:
        out = []
        assert p.dense is not None
        for i, (chunk, vector) in enumerate(zip(p.chunks, p.dense, strict=True)):
            sparse = self._sparse.document(passage_text(p.doc.title, chunk))
            out.append(
                ChunkPoint(
                    id=chunk_point_id(ns, p.doc.id, gen, i),
                    dense=vector,
                    sparse_indices=list(sparse.indices),
                    sparse_values=list(sparse.values),
                    payload={
                        "kind": "chunk",
                        "namespace": ns,
                        "doc_id": p.doc.id,
                        "generation": gen,
                        "chunk_id": f"{p.doc.id}#{i}",
                        "chunk_index": i,
                        "text": chunk,
                        "title": p.doc.title,
                        "metadata": p.doc.metadata,
                        "written_at": now,
                    },
                )
            )
        return out
