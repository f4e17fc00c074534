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
