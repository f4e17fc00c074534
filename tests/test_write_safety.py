"""Writes that fail, are cancelled or race leave nothing stale and nothing orphaned (both backends).

Each test breaks a write at a chosen store call (tests/faults.py), then checks what a caller
sees (search, the cache, count) and what the store holds (every chunk point, cleanup markers),
and that a retry repairs whatever is left.
"""

from __future__ import annotations

import asyncio

import pytest

from faults import Faults
from knowledge_service.app import Knowledge
from knowledge_service.schemas.documents import CountRequest, DeleteRequest, IngestRequest
from knowledge_service.schemas.search import SearchRequest

NS = "kb"
OLD = " ".join(f"The old handbook says rule {i} is about parking permits." for i in range(40))
NEW = " ".join(f"The new handbook says rule {i} is about bicycle sheds." for i in range(25))


async def ingest(core: Knowledge, text: str, doc_id: str = "hb") -> str:
    resp = await core.documents.ingest(IngestRequest(namespace=NS, documents=[{"id": doc_id, "text": text}]))
    return resp.results[0].status


def chunks(core: Knowledge, text: str) -> int:
    return len(core.chunker.split(text))


async def texts(core: Knowledge, query: str = "handbook rule") -> tuple[set[str], bool]:
    resp = await core.searcher.search(SearchRequest(namespace=NS, query=query, top_k=50, candidates=100))
    return {h.text.split(" says")[0] for h in resp.results}, resp.cache_hit


async def stored(core: Knowledge) -> tuple[int, int, int]:
    """Every chunk point in the namespace (live or not), live chunks, and cleanup markers left."""
    every = await core.runner.run(core.stores[0].count, NS, "chunk")
    live = (await core.documents.count(CountRequest(namespace=NS))).chunks
    markers = await core.runner.run(core.stores[0].count, NS, "gc")
    return every, live, markers


async def test_delete_failing_after_the_record_went_is_repaired_by_its_retry(any_core: Knowledge) -> None:
    await ingest(any_core, OLD)
    assert (await texts(any_core))[0] == {"The old handbook"}
    assert (await texts(any_core))[1] is True  # cached now
    faults = Faults(any_core)
    faults.fail("delete_generations")  # the record is gone, its chunks are not
    with pytest.raises(ConnectionError):
        await any_core.documents.delete(DeleteRequest(namespace=NS, ids=["hb"]))
    found, hit = await texts(any_core)
    assert found == set() and not hit  # neither the chunks nor the cached answer are served
    counted = await any_core.documents.count(CountRequest(namespace=NS))
    assert (counted.documents, counted.chunks) == (0, 0)  # count sees live chunks only
    version = counted.index_version

    retry = await any_core.documents.delete(DeleteRequest(namespace=NS, ids=["hb"]))
    assert retry.deleted == 1 and retry.index_version > version
    assert await stored(any_core) == (0, 0, 0)  # no orphan chunk, no marker left


async def test_reingest_failing_while_removing_old_chunks_is_repaired_by_its_retry(
    any_core: Knowledge,
) -> None:
    await ingest(any_core, OLD)
    await texts(any_core)
    faults = Faults(any_core)
    faults.fail("delete_generations")
    with pytest.raises(ConnectionError):
        await ingest(any_core, NEW)
    found, hit = await texts(any_core)
    assert found == {"The new handbook"} and not hit  # the flip landed; the cache does not hide it
    every, live, _ = await stored(any_core)
    n = chunks(any_core, NEW)
    assert live == n and every == n + chunks(any_core, OLD)  # old chunks there, not counted nor found

    assert await ingest(any_core, NEW) == "unchanged"  # the retry finishes the cleanup
    assert await stored(any_core) == (n, n, 0)
    assert (await texts(any_core))[0] == {"The new handbook"}


@pytest.mark.parametrize("step", ["upsert_chunks", "swap_doc"])
async def test_ingest_cancelled_half_way_leaves_nothing(any_core: Knowledge, step: str) -> None:
    """Cancelled after its chunks were written (a client deadline, or shutdown past the grace)."""
    await ingest(any_core, OLD, doc_id="other")
    reached, never = asyncio.Event(), asyncio.Event()

    async def hang() -> None:
        reached.set()
        await never.wait()

    faults = Faults(any_core)
    faults.on(step, after=hang) if step == "upsert_chunks" else faults.on(step, before=hang)
    task = asyncio.create_task(ingest(any_core, NEW))
    await asyncio.wait_for(reached.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    faults.restore()
    counted = await any_core.documents.count(CountRequest(namespace=NS))
    n = chunks(any_core, OLD)
    assert (counted.documents, counted.chunks) == (1, n)
    assert await stored(any_core) == (n, n, 0)  # the cancelled write's chunks were removed
    assert await ingest(any_core, NEW) == "created"  # and it can simply be sent again


async def test_failed_write_never_serves_results_cached_before_it(any_core: Knowledge) -> None:
    await ingest(any_core, OLD)
    await texts(any_core)
    assert (await texts(any_core))[1] is True
    faults = Faults(any_core)
    faults.fail("swap_doc")  # chunks written, flip fails: nothing visible changes
    with pytest.raises(ConnectionError):
        await ingest(any_core, NEW)
    found, hit = await texts(any_core)
    assert found == {"The old handbook"} and not hit  # recomputed, not the entry from before
    n = chunks(any_core, OLD)
    assert await stored(any_core) == (n, n, 0)


async def test_cache_entry_from_before_a_write_is_not_served_while_it_runs(any_core: Knowledge) -> None:
    await ingest(any_core, OLD)
    await texts(any_core)
    reached, go = asyncio.Event(), asyncio.Event()

    async def pause() -> None:
        reached.set()
        await go.wait()

    faults = Faults(any_core)
    faults.on("put_markers", before=pause)  # after the first version bump, before anything else
    task = asyncio.create_task(ingest(any_core, NEW))
    await asyncio.wait_for(reached.wait(), 60)
    found, hit = await texts(any_core)
    assert not hit and found == {"The old handbook"}
    go.set()
    assert await task == "updated"
    found, hit = await texts(any_core)
    assert not hit and found == {"The new handbook"}


async def test_delete_racing_a_recreate_on_another_replica(any_core: Knowledge, dense_encoder) -> None:
    """While replica A deletes a document, replica B re-creates it: B's version stays whole."""
    a = any_core
    b = await Knowledge.open(a.settings, dense=dense_encoder, stores=a.stores)
    try:
        for step in ("delete_docs_if", "delete_generations"):  # B lands before / after A's delete
            await ingest(a, OLD)

            async def recreate() -> None:
                assert await ingest(b, NEW) in ("created", "updated")

            faults = Faults(a)
            faults.on(step, before=recreate)
            await a.documents.delete(DeleteRequest(namespace=NS, ids=["hb"]))
            faults.restore()
            counted = await a.documents.count(CountRequest(namespace=NS))
            n = chunks(a, NEW)
            assert (counted.documents, counted.chunks) == (1, n), step  # B's version, whole
            assert (await texts(a))[0] == {"The new handbook"}
            assert await ingest(a, NEW) == "unchanged"
            assert await stored(a) == (n, n, 0), step
            await a.documents.delete(DeleteRequest(namespace=NS, ids=["hb"]))
    finally:
        await b.close()


async def test_index_version_increases_strictly_across_replicas(any_core: Knowledge, dense_encoder) -> None:
    a = any_core
    b = await Knowledge.open(a.settings, dense=dense_encoder, stores=a.stores)
    try:
        bumps = [core.runner.run(core.stores[0].bump_index_version, NS) for core in (a, b) for _ in range(12)]
        versions = await asyncio.gather(*bumps)
        assert len(set(versions)) == len(versions)  # every bump got a version of its own
        assert await a.runner.run(a.stores[0].get_index_version, NS) == max(versions)
    finally:
        await b.close()


async def test_delete_by_filter_goes_page_by_page(any_core: Knowledge) -> None:
    docs = [
        {"id": f"d{i}", "text": f"Note {i} on topic {i % 3}.", "metadata": {"t": i % 3}} for i in range(600)
    ]
    for start in range(0, 600, 256):
        await any_core.documents.ingest(IngestRequest(namespace=NS, documents=docs[start : start + 256]))
    held: list[bool] = []

    async def lock_state() -> None:
        held.append(any_core.writes.lock(NS).locked())

    faults = Faults(any_core)
    faults.on("find_docs", before=lock_state, times=10)
    resp = await any_core.documents.delete(DeleteRequest(namespace=NS, filter={"field": "t", "any": [0, 1]}))
    assert resp.deleted == 400
    assert len(held) >= 2 and not any(held)  # between pages the namespace is free for other writes
    counted = await any_core.documents.count(CountRequest(namespace=NS))
    assert (counted.documents, counted.chunks) == (200, 200)
    assert await stored(any_core) == (200, 200, 0)
