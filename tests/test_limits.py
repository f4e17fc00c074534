"""Backpressure and deadlines: 429 with a retry-after hint beyond the bound, stages cut by deadlines."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from harness import eventually
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import SearchRequest


@pytest.fixture
def settings(tmp_path: Path) -> Settings:  # overrides conftest's: tight bounds to provoke 429s
    return Settings(
        data_dir=tmp_path / "data",
        optimize_idle_s=0,
        max_concurrent_ingests=1,
        max_concurrent_searches=1,
        queue_wait_s=0.02,
        retry_after_s=0.2,
    )


async def test_ingest_burst_gets_429_and_loses_or_duplicates_nothing(http_url: str) -> None:
    async with httpx.AsyncClient(base_url=http_url, timeout=60) as http:

        async def send(i: int) -> httpx.Response:
            doc = {"id": f"d{i}", "text": f"Burst document number {i} about backpressure."}
            return await http.post("/v1/namespaces/kb/documents", json={"documents": [doc]})

        first = await asyncio.gather(*(send(i) for i in range(8)))
        refused = [i for i, r in enumerate(first) if r.status_code == 429]
        assert refused, "the burst never hit the bound"
        for i in refused:
            r = first[i]
            assert r.headers["retry-after"] == "1" and r.json()["error"]["retry_after_ms"] == 200
            assert r.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
        assert all(r.status_code == 200 for i, r in enumerate(first) if i not in refused)
        done = (await http.get("/v1/namespaces/kb/count")).json()["documents"]
        assert done == 8 - len(refused)  # a refused request wrote nothing
        for i in refused:  # the hint says retrying is safe

            async def admitted(i: int = i) -> httpx.Response | None:
                r = await send(i)
                return None if r.status_code == 429 else r

            r = await eventually(admitted, timeout=30, interval=0.2, what=f"d{i} admitted on a retry")
            assert r.json()["results"][0]["status"] == "created"
        again = await asyncio.gather(*(send(i) for i in range(8)))
        statuses = {r.json()["results"][0]["status"] for r in again if r.status_code == 200}
        assert statuses <= {"unchanged"}
        counted = (await http.get("/v1/namespaces/kb/count")).json()
        assert (counted["documents"], counted["chunks"]) == (8, 8)  # each exactly once


async def test_search_burst_and_deadline(http_url: str, core: Knowledge) -> None:
    await core.documents.ingest(
        IngestRequest(namespace="kb", documents=[{"id": "a", "text": "Deadlines cut stages."}])
    )
    async with httpx.AsyncClient(base_url=http_url, timeout=60) as http:
        burst = await asyncio.gather(
            *(http.post("/v1/namespaces/kb/search", json={"query": f"deadline {i}"}) for i in range(10))
        )
        codes = sorted(r.status_code for r in burst)
        assert 200 in codes and 429 in codes and set(codes) == {200, 429}
        r = await http.post(
            "/v1/namespaces/kb/search",
            json={"query": "a fresh uncached query"},
            headers={"x-request-timeout-ms": "1"},
        )
        assert r.status_code == 504 and r.json()["error"]["code"] == "DEADLINE_EXCEEDED"
        r = await http.post(
            "/v1/namespaces/kb/search",
            json={"query": "another fresh query"},
            headers={"x-request-timeout-ms": "30000"},
        )
        assert r.status_code == 200 and [h["doc_id"] for h in r.json()["results"]] == ["a"]


async def test_a_rerank_that_would_overrun_the_deadline_is_cut(
    settings: Settings,
    dense_encoder: DenseModel,
    tiny_cross_encoder: Path,
) -> None:
    core = await Knowledge.open(
        settings.model_copy(update={"rerank_model": str(tiny_cross_encoder)}), dense=dense_encoder
    )
    try:
        await core.documents.ingest(
            IngestRequest(
                namespace="kb",
                documents=[{"id": f"d{i}", "text": f"Passage {i} on reranking budgets."} for i in range(5)],
            )
        )
        full = await core.searcher.search(SearchRequest(namespace="kb", query="reranking budget"))
        assert full.rerank == "applied" and core.searcher.rerank.estimate_s > 0
        core.searcher.rerank.estimate_s = 60.0  # as if reranking took a minute
        cut = await core.searcher.search(
            SearchRequest(namespace="kb", query="rerank budget"), time.monotonic() + 5
        )
        assert cut.rerank == "skipped" and cut.degraded == ["rerank"] and len(cut.results) == 5
        assert all(h.scores.rerank is None for h in cut.results)
        again = await core.searcher.search(SearchRequest(namespace="kb", query="rerank budget"))
        assert again.cache_hit is False and again.rerank == "applied"  # the cut answer was not cached
    finally:
        await core.close()


async def test_no_queue_wait_still_admits_a_free_slot(tmp_path: Path, dense_encoder: DenseModel) -> None:
    settings = Settings(data_dir=tmp_path / "data", optimize_idle_s=0, queue_wait_s=0)
    core = await Knowledge.open(settings, dense=dense_encoder)
    try:
        resp = await core.documents.ingest(
            IngestRequest(namespace="kb", documents=[{"id": "a", "text": "No wait."}])
        )
        assert resp.results[0].status == "created"
        found = await core.searcher.search(SearchRequest(namespace="kb", query="wait"))
        assert [h.doc_id for h in found.results] == ["a"]
    finally:
        await core.close()
