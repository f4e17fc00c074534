"""Ingest and delete: validate -> content-hash -> chunk -> encode -> write chunks -> flip -> clean.

A document's chunks carry a *generation* (random, unique per write); its record names the live
one, and search drops the rest. A re-ingest writes the new generation's chunks, then flips the
record in one compare-and-set write (only if it still names the generation this write replaces),
then deletes the old chunks: a search sees the old version or the new one, never neither or both;
chunks of a write that failed half-way, or lost to a concurrent write on another replica, are
never visible and are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .encoders import passage_text
from .errors import InvalidArgument, from_validation_error
from .limits import MAX_BATCH_DOCS
from .models import (
    DeleteRequest,
    DeleteResponse,
    DocumentIn,
    IngestRequest,
    IngestResponse,
    IngestResult,
)
from .store import ChunkPoint
from .store.base import chunk_point_id

if TYPE_CHECKING:
    from .core import KnowledgeCore

log = logging.getLogger(__name__)
UPSERT_BATCH = 256


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


async def ingest(core: KnowledgeCore, req: IngestRequest) -> IngestResponse:
    ns = req.namespace
    results, pending = _validate(req.documents, core.index_params)
    if not pending:
        raise InvalidArgument(
            "no valid document in the batch: " + "; ".join(r.error or "" for r in results if r),
            field="documents",
        )

    existing = await core.run_store(core.store.get_docs, ns, [p.doc.id for p in pending])
    todo = []
    for p in pending:
        old = existing.get(p.doc.id)
        if old is not None and old.get("content_hash") == p.content_hash:
            results[p.pos] = IngestResult(id=p.doc.id, status="unchanged", chunks=old["chunks"])
        else:
            todo.append(p)

    if todo:
        await core.run_ingest_model(_chunk_and_encode, core, todo)
        for p in todo:
            if not p.chunks:
                results[p.pos] = IngestResult(
                    id=p.doc.id, status="failed", error=f"documents[{p.pos}].text: no indexable text"
                )
        todo = [p for p in todo if p.chunks]

    async with core.namespace_lock(ns):
        written = await _write(core, ns, todo, results) if todo else False
        if written:
            version = await core.bump_index_version(ns)
        else:
            version = await core.run_store(core.store.get_index_version, ns)
    return IngestResponse(results=[r for r in results if r is not None], index_version=version)


def _chunk_and_encode(core: KnowledgeCore, todo: list[_Pending]) -> None:
    passages: list[str] = []
    for p in todo:
        p.chunks = core.chunker.split(p.doc.text)
        passages.extend(passage_text(p.doc.title, c) for c in p.chunks)
    vectors = core.dense.encode(passages) if passages else []
    offset = 0
    for p in todo:
        p.dense = vectors[offset : offset + len(p.chunks)]
        offset += len(p.chunks)


async def _write(
    core: KnowledgeCore, ns: str, todo: list[_Pending], results: list[IngestResult | None]
) -> bool:
    """Write under the namespace lock; returns whether anything changed."""
    existing = await core.run_store(core.store.get_docs, ns, [p.doc.id for p in todo])
    now = time.time()
    points: list[ChunkPoint] = []
    records: list[dict[str, Any]] = []
    generations: dict[str, tuple[int | None, int]] = {}
    for p in todo:
        old = existing.get(p.doc.id)
        if old is not None and old.get("content_hash") == p.content_hash:  # raced with a twin
            results[p.pos] = IngestResult(id=p.doc.id, status="unchanged", chunks=old["chunks"])
            continue
        old_gen = int(old["generation"]) if old else None
        gen = secrets.randbits(62)  # unique per write: concurrent writers never share chunk ids
        generations[p.doc.id] = (old_gen, gen)
        points.extend(_points(ns, p, gen, core))
        records.append(
            {
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
        )
        results[p.pos] = IngestResult(
            id=p.doc.id, status="updated" if old else "created", chunks=len(p.chunks)
        )
    if not records:
        return False
    try:
        for start in range(0, len(points), UPSERT_BATCH):
            await core.run_store(core.store.upsert_chunks, points[start : start + UPSERT_BATCH])
    except Exception:
        # The records still name the old generations, so nothing written here is visible.
        for doc_id, (_, gen) in generations.items():
            try:
                await core.run_store(core.store.delete_chunks, ns, doc_id, gen)
            except Exception:
                log.warning("could not clean partial chunks of %r/%r", ns, doc_id)
        raise
    # The flip: each record moves to its new generation only if nobody else moved it meanwhile.
    for record in records:
        await core.run_store(core.store.swap_doc, record, generations[record["doc_id"]][0])
    stored = await core.run_store(core.store.get_docs, ns, list(generations))
    positions = {p.doc.id: p.pos for p in todo}
    for doc_id, (old_gen, gen) in generations.items():
        if stored.get(doc_id, {}).get("generation") == gen:  # won: the old chunks go
            if old_gen is not None:
                await core.run_store(core.store.delete_chunks, ns, doc_id, old_gen)
        else:  # a concurrent ingest or delete of this document won: ours never became visible
            await core.run_store(core.store.delete_chunks, ns, doc_id, gen)
            results[positions[doc_id]] = IngestResult(
                id=doc_id,
                status="failed",
                error=f"documents[{positions[doc_id]}]: a concurrent ingest or delete of this document "
                "won; send it again if yours should be the latest",
            )
    return True


def _points(ns: str, p: _Pending, gen: int, core: KnowledgeCore) -> list[ChunkPoint]:
    out = []
    assert p.dense is not None
    for i, (chunk, vector) in enumerate(zip(p.chunks, p.dense, strict=True)):
        sparse = core.sparse.document(passage_text(p.doc.title, chunk))
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
                },
            )
        )
    return out


async def delete(core: KnowledgeCore, req: DeleteRequest) -> DeleteResponse:
    ns = req.namespace
    async with core.namespace_lock(ns):
        ids = list(dict.fromkeys(req.ids))
        found = list(await core.run_store(core.store.get_docs, ns, ids)) if ids else []
        await _delete_docs(core, ns, found)
        if req.filter:
            while True:  # page through matches; each pass deletes what it found
                batch = await core.run_store(core.store.find_doc_ids, ns, req.filter, MAX_BATCH_DOCS)
                batch = [d for d in batch if d not in found]
                if not batch:
                    break
                await _delete_docs(core, ns, batch)
                found.extend(batch)
        if found:
            version = await core.bump_index_version(ns)
        else:
            version = await core.run_store(core.store.get_index_version, ns)
    return DeleteResponse(deleted=len(found), index_version=version)


async def _delete_docs(core: KnowledgeCore, ns: str, doc_ids: list[str]) -> None:
    if not doc_ids:
        return
    await core.run_store(core.store.delete_docs, ns, doc_ids)  # invisible from here on
    for doc_id in doc_ids:
        await core.run_store(core.store.delete_chunks, ns, doc_id, None)
