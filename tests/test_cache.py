"""The result cache on real Redis: hits, invalidation by index version, and outages."""

from __future__ import annotations

import uuid

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import SearchRequest


async def test_redis_cache_hits_and_ingest_makes_old_entries_unreachable(
    settings: Settings, dense_encoder: DenseModel, redis_url: str
) -> None:
    ns = f"cache-{uuid.uuid4().hex[:8]}"
    core = await Knowledge.open(settings.model_copy(update={"redis_url": redis_url}), dense=dense_encoder)
    try:
        assert core.cache.name == "redis"
        await core.documents.ingest(
            IngestRequest(
                namespace=ns, documents=[{"id": "a", "text": "Redis keeps the result cache of the side-car."}]
            )
        )
        first = await core.searcher.search(SearchRequest(namespace=ns, query="result cache"))
        second = await core.searcher.search(SearchRequest(namespace=ns, query="result cache"))
        assert (first.cache_hit, second.cache_hit) == (False, True)
        assert second.results == first.results and second.degraded == []
        other = await core.searcher.search(SearchRequest(namespace=ns, query="result cache", top_k=3))
        assert other.cache_hit is False  # every result-changing parameter is in the key

        await core.documents.ingest(
            IngestRequest(
                namespace=ns,
                documents=[{"id": "b", "text": "A result cache must never serve stale results."}],
            )
        )
        third = await core.searcher.search(SearchRequest(namespace=ns, query="result cache"))
        assert third.cache_hit is False and {h.doc_id for h in third.results} == {"a", "b"}
    finally:
        await core.close()


async def test_cache_outage_degrades_to_uncached_search(
    settings: Settings, dense_encoder: DenseModel
) -> None:
    from harness import free_port

    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    core = await Knowledge.open(settings.model_copy(update={"redis_url": down}), dense=dense_encoder)
    try:
        await core.documents.ingest(
            IngestRequest(
                namespace="kb", documents=[{"id": "a", "text": "Search still works when the cache is down."}]
            )
        )
        for _ in range(2):
            resp = await core.searcher.search(SearchRequest(namespace="kb", query="cache down"))
            assert [h.doc_id for h in resp.results] == ["a"]
            assert resp.cache_hit is False and resp.degraded == ["cache"]
        assert (await core.health.readiness())["cache"].startswith("down")
    finally:
        await core.close()


async def test_decoded_answers_serve_repeats_without_asking_the_cache(
    settings: Settings, dense_encoder: DenseModel, redis_url: str
) -> None:
    """A repeat is answered from the decoded copy kept in process, not from Redis; the copy handed
    out is the caller's to change; with KNOWLEDGE_CACHE_DECODED_ENTRIES=0 every repeat asks Redis."""
    import redis

    from knowledge_service.storage.cache import KEY_PREFIX

    plain = redis.Redis.from_url(redis_url)
    for entries, served_after_eviction in ((1024, True), (0, False)):
        ns = f"decoded-{uuid.uuid4().hex[:8]}"
        update = {"redis_url": redis_url, "cache_decoded_entries": entries}
        core = await Knowledge.open(settings.model_copy(update=update), dense=dense_encoder)
        try:
            await core.documents.ingest(
                IngestRequest(namespace=ns, documents=[{"id": "a", "text": "Answers kept decoded."}])
            )
            before = set(plain.scan_iter(f"{KEY_PREFIX}*"))
            first = await core.searcher.search(SearchRequest(namespace=ns, query="decoded answers"))
            (key,) = set(plain.scan_iter(f"{KEY_PREFIX}*")) - before
            second = await core.searcher.search(SearchRequest(namespace=ns, query="decoded answers"))
            assert (first.cache_hit, second.cache_hit) == (False, True)
            found = [h.doc_id for h in first.results]
            assert found == ["a"] and second.results == first.results
            first.results.clear()  # the callers' copies: the kept answer must not change with them
            second.results.clear()

            plain.delete(key)  # Redis no longer has it
            third = await core.searcher.search(SearchRequest(namespace=ns, query="decoded answers"))
            assert third.cache_hit is served_after_eviction
            assert [h.doc_id for h in third.results] == found and third.degraded == []
        finally:
            await core.close()
    plain.close()
