"""The sweeper removes chunks with no live record, never those of a write still in progress."""

from __future__ import annotations

import secrets

import pytest

from faults import Faults
from knowledge_service.app import Knowledge
from knowledge_service.schemas.documents import CountRequest, DeleteRequest, IngestRequest
from knowledge_service.storage import ChunkPoint, Marker
from knowledge_service.storage.points import chunk_point_id

NS = "kb"
TEXT = " ".join(f"Paragraph {i} describes the deployment checklist in detail." for i in range(30))


async def raw(core: Knowledge) -> tuple[int, int]:
    """Every chunk point and every cleanup marker in the namespace."""
    return (
        await core.runner.run(core.stores[0].count, NS, "chunk"),
        await core.runner.run(core.stores[0].count, NS, "gc"),
    )


def swept(core: Knowledge, pass_: str) -> float:
    return core.metrics.swept_chunks.labels(pass_)._value.get()


async def test_unsettled_write_is_swept_only_after_the_grace_period(any_core: Knowledge) -> None:
    faults = Faults(any_core)
    faults.fail("swap_doc")  # the flip fails after the chunks were written...
    faults.fail("delete_generations")  # ...and so does the cleanup: as if the writer had died
    with pytest.raises(ConnectionError):
        await any_core.documents.ingest(IngestRequest(namespace=NS, documents=[{"id": "d", "text": TEXT}]))
    faults.restore()
    n = len(any_core.chunker.split(TEXT))
    assert await raw(any_core) == (n, 1)  # orphans and their marker
    assert (await any_core.documents.count(CountRequest(namespace=NS))).chunks == 0

    assert await any_core.sweeper.sweep_markers() == 0  # could be a write in progress: wait
    assert await raw(any_core) == (n, 1)
    any_core.sweeper.grace_s = 0.0
    assert await any_core.sweeper.sweep_markers() == n
    assert await raw(any_core) == (0, 0)
    assert swept(any_core, "markers") == n


async def test_half_done_delete_is_swept_at_once(any_core: Knowledge) -> None:
    await any_core.documents.ingest(IngestRequest(namespace=NS, documents=[{"id": "d", "text": TEXT}]))
    faults = Faults(any_core)
    faults.fail("delete_generations")
    with pytest.raises(ConnectionError):
        await any_core.documents.delete(DeleteRequest(namespace=NS, ids=["d"]))
    faults.restore()
    n = len(any_core.chunker.split(TEXT))
    assert await raw(any_core) == (n, 1)
    # An 'old' generation that is no longer live never returns: no grace period needed.
    assert await any_core.sweeper.sweep_markers() == n
    assert await raw(any_core) == (0, 0)


async def test_full_scan_removes_unmarked_orphans_but_not_writes_in_progress(any_core: Knowledge) -> None:
    store = any_core.stores[0]
    await any_core.documents.ingest(
        IngestRequest(namespace=NS, documents=[{"id": "gone", "text": TEXT}, {"id": "kept", "text": "Kept."}])
    )
    record = (await any_core.runner.run(store.get_docs, NS, ["gone"]))["gone"]
    # A record removed without a marker (as stores written before markers existed could be).
    await any_core.runner.run(store.delete_docs_if, NS, {"gone": record["generation"]})
    # A write in progress: its marker, then its chunks, no record yet.
    live = (await any_core.runner.run(store.get_docs, NS, ["kept"]))["kept"]
    gen = secrets.randbits(62)
    await any_core.runner.run(store.put_markers, [Marker(NS, "new-doc", gen, "new")])
    chunks, _ = await any_core.runner.run(store._scroll, store.f.scope(NS, "chunk"), 1, None, True)
    point = ChunkPoint(
        chunk_point_id(NS, "new-doc", gen, 0),
        [0.1] * 384,
        [1],
        [1.0],
        {**chunks[0], "doc_id": "new-doc", "generation": gen, "written_at": 0.0},
    )
    await any_core.runner.run(store.upsert_chunks, [point])
    n = len(any_core.chunker.split(TEXT))
    assert await raw(any_core) == (n + 2, 1)

    assert await any_core.sweeper.scan() == 0  # everything is younger than the grace period
    any_core.sweeper.grace_s = 0.0
    assert await any_core.sweeper.scan() == n  # the unmarked orphans went; the marked write stayed
    assert await raw(any_core) == (2, 1)
    assert swept(any_core, "scan") == n
    kept = await any_core.runner.run(store.get_docs, NS, ["kept"])
    assert kept["kept"]["generation"] == live["generation"]
    assert (await any_core.documents.count(CountRequest(namespace=NS))).chunks == 1
