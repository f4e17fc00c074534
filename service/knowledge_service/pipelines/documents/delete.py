"""Delete documents by id and/or metadata filter, one page of documents at a time.

Per page: leave an ``old`` cleanup marker for each document's live generation, remove the records
that still name that generation (one compare-and-set delete: a document re-ingested meanwhile by
another replica is left alone), then settle (settle.py): the chunks of the generations that are no
longer live go in one filtered delete, then the markers. Only the generation the deleted record
named is removed, never "every chunk of this id", so a replica re-creating the document at the
same moment keeps its chunks. A delete that failed half-way is finished by its retry (the ids'
``old`` markers) or by the sweeper; the index version moves before and after, so cached results
from before the delete are not served once it began. Work is linear in the documents matched, and
the namespace lock is held for one page at a time.
"""

from __future__ import annotations

from typing import Any

from knowledge_service.core.limits import MAX_BATCH_DOCS
from knowledge_service.pipelines.documents.settle import repair, settle, shielded
from knowledge_service.pipelines.documents.writes import Writes
from knowledge_service.schemas.documents import DeleteRequest, DeleteResponse
from knowledge_service.storage import Marker
from knowledge_service.storage.runner import AsyncStore

PAGE = MAX_BATCH_DOCS


async def delete(store: AsyncStore, writes: Writes, req: DeleteRequest) -> DeleteResponse:
    ns = req.namespace
    ids = list(dict.fromkeys(req.ids))
    by_id = await store.get_docs(ns, ids) if ids else {}
    # Ids without a record: an earlier delete of them may have stopped half-way; finish it.
    deleted = set(await repair(store, ns, [d for d in ids if d not in by_id]))
    if not by_id and not req.filter:
        if deleted:  # the earlier attempt may have failed before its last version bump
            version = await store.bump_index_version(ns)
            return DeleteResponse(deleted=len(deleted), index_version=version)
        version = await store.get_index_version(ns)
        return DeleteResponse(deleted=0, index_version=version)

    async with writes.index_write(ns) as written:
        if by_id:
            deleted |= await _delete_page(store, writes, ns, list(by_id.values()))
        if req.filter:
            offset: Any = None
            while True:
                page, offset = await store.find_docs(ns, req.filter, PAGE, offset)
                deleted |= await _delete_page(
                    store, writes, ns, [r for r in page if r["doc_id"] not in by_id]
                )
                if offset is None:
                    break
    return DeleteResponse(deleted=len(deleted), index_version=written.value)


async def _delete_page(store: AsyncStore, writes: Writes, ns: str, records: list[dict[str, Any]]) -> set[str]:
    """Delete one page of documents; return the ids whose record this removed."""
    if not records:
        return set()
    expected = {r["doc_id"]: int(r["generation"]) for r in records}
    markers = [Marker(ns, d, g, "old") for d, g in expected.items()]
    async with writes.lock(ns):
        await store.put_markers(markers)
        try:
            await store.delete_docs_if(ns, expected)
        finally:  # however the delete ended, the chunks of generations no longer live go
            settled = await shielded(settle(store, ns, markers))
    return {d for d in expected if d not in settled}
