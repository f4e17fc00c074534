"""A caller cannot force unbounded cost: cache bytes, request depths, explain, rerank time, streams."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.app import Knowledge
from knowledge_service.core import limits as L
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel
from knowledge_service.schemas.documents import CountRequest, IngestRequest
from knowledge_service.schemas.search import SearchRequest
from knowledge_service.storage.cache import MemoryCache

DOCS = [{"id": f"d{i}", "text": f"Note {i} on bounded cost, topic {i % 7}."} for i in range(60)]


async def test_memory_cache_is_bounded_in_bytes() -> None:
    cache = MemoryCache(max_bytes=1_000, ttl_s=60)
    for i in range(20):
        await cache.set(f"k{i}", b"x" * 300)
    assert cache._data.currsize <= 1_000 and len(cache._data) == 3  # the oldest went
    await cache.set("huge", b"x" * 1_001)
    assert await cache.get("huge") is None


async def test_large_answers_are_not_cached(tmp_path: Path, dense_encoder: DenseModel) -> None:
    settings = Settings(data_dir=tmp_path / "data", optimize_idle_s=0, cache_max_entry_bytes=2_000)
    core = await Knowledge.open(settings, dense=dense_encoder)
    try:
        await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
        small = SearchRequest(namespace="kb", query="bounded cost", top_k=1)
        big = SearchRequest(namespace="kb", query="bounded cost", top_k=50, candidates=60)
        for req, cached in ((small, True), (big, False)):
            await core.searcher.search(req)
            assert (await core.searcher.search(req)).cache_hit is cached
        assert core.metrics.cache_skipped.labels("too_large")._value.get() == 2
    finally:
        await core.close()


async def test_requests_ask_for_less_depth_than_profiles_may_hold(http_url: str) -> None:
    async with httpx.AsyncClient(base_url=http_url, timeout=60) as http:
        await http.post("/v1/namespaces/kb/documents", json={"documents": DOCS})
        over = [
            {"query": "cost", "candidates": L.MAX_OVERRIDE_CANDIDATES + 1},
            {"query": "cost", "overrides": {"candidates": L.MAX_OVERRIDE_CANDIDATES + 1}},
            {"query": "cost", "overrides": {"rerank_depth": L.MAX_OVERRIDE_RERANK_DEPTH + 1}},
        ]
        for body in over:
            r = await http.post("/v1/namespaces/kb/search", json=body)
            assert r.status_code == 422, body
            assert r.json()["error"]["field"] in ("candidates", "rerank_depth")
        deep = {"settings": {"candidates": 800, "rerank_depth": 500}}
        assert (await http.put("/v1/profiles/deep", json=deep)).status_code == 200
        r = await http.post("/v1/namespaces/kb/search", json={"query": "cost", "profile": "deep"})
        assert r.status_code == 200 and r.json()["results"]


async def test_explain_is_bounded_in_depth(core: Knowledge) -> None:
    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    await core.registry.put("deep", {"candidates": 900})
    limits: list[int] = []
    run = core.runner.run

    async def record(fn: Any, *args: Any) -> Any:
        if getattr(fn, "__name__", "") == "query_many":  # engine queries, batched
            limits.extend(plan.limit for plan in args[0])
        return await run(fn, *args)

    core.runner.run = record  # type: ignore[method-assign]
    resp = await core.searcher.search(
        SearchRequest(namespace="kb", query="topic 3", profile="deep", explain=True)
    )
    top = resp.results[0].scores
    assert 1 <= top.dense_rank <= L.MAX_EXPLAIN_DEPTH and 1 <= top.sparse_rank <= L.MAX_EXPLAIN_DEPTH
    assert len(limits) == 3 and max(limits[1:]) <= L.MAX_EXPLAIN_DEPTH  # the fused query, then each leg


@pytest.fixture
async def slow_reranker(
    tmp_path: Path,
    dense_encoder: DenseModel,
    tiny_cross_encoder: Path,
) -> AsyncIterator[Knowledge]:
    settings = Settings(
        data_dir=tmp_path / "data",
        optimize_idle_s=0,
        rerank_model=str(tiny_cross_encoder),
        rerank_budget_ms=30,
    )
    core = await Knowledge.open(settings, dense=dense_encoder)
    assert core.reranker is not None
    score_batch = core.reranker.score_batch

    def slow(*args: Any, **kwargs: Any) -> Any:  # a model that needs 50 ms per batch
        time.sleep(0.05)  # the slowness is what the test is about, not a wait
        return score_batch(*args, **kwargs)

    core.reranker.score_batch = slow  # type: ignore[method-assign]
    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    yield core
    await core.close()


async def test_reranking_stops_at_its_time_budget(slow_reranker: Knowledge) -> None:
    resp = await slow_reranker.searcher.search(
        SearchRequest(namespace="kb", query="bounded cost", overrides={"rerank_depth": 48})
    )
    assert resp.rerank == "skipped" and resp.degraded == ["rerank"]
    assert resp.results and all(h.scores.rerank is None for h in resp.results)
    within = await slow_reranker.searcher.search(
        SearchRequest(namespace="kb", query="topic 2", overrides={"rerank_depth": 10})
    )
    assert within.rerank == "applied"  # one batch fits the budget


async def test_ingest_stream_is_bounded(
    stub: pb_grpc.KnowledgeServiceStub,
    core: Knowledge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(L, "MAX_STREAM_MESSAGES", 3)
    messages = [
        pb.IngestRequest(namespace="kb", documents=[pb.Document(id=f"s{i}", text=f"Streamed note {i}.")])
        for i in range(5)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IngestStream(iter(messages))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 3 messages" in err.value.details() and "messages 0-2 were ingested" in err.value.details()
    assert (await core.documents.count(CountRequest(namespace="kb"))).documents == 3
    monkeypatch.setattr(L, "MAX_STREAM_BYTES", 100)
    big = pb.IngestRequest(namespace="kb", documents=[pb.Document(id="big", text="x" * 200)])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IngestStream(iter([big]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "100 bytes" in err.value.details()
    assert (
        await core.documents.count(CountRequest(namespace="kb"))
    ).documents == 3  # nothing over the bound written
