"""The rerank stage with a real CrossEncoder (a small one built here: no trained one installs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sentence_transformers import CrossEncoder

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import SearchRequest

DOCS = [
    {"id": f"d{i}", "text": f"Passage {i} about retrieval, ranking and {w}."}
    for i, w in enumerate(["vectors", "lexical search", "fusion", "caching", "rerankers", "latency"])
]


@pytest.fixture
async def reranking_core(
    settings: Settings, dense_encoder: DenseModel, tiny_cross_encoder: Path
) -> AsyncIterator[Knowledge]:
    """A core with the tiny cross-encoder configured, DOCS ingested in namespace "kb"."""
    core = await Knowledge.open(
        settings.model_copy(update={"rerank_model": str(tiny_cross_encoder)}), dense=dense_encoder
    )
    try:
        await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
        yield core
    finally:
        await core.close()


async def test_configured_reranker_reorders_candidates(
    reranking_core: Knowledge, tiny_cross_encoder: Path
) -> None:
    core = reranking_core
    query = "how do rerankers change ranking?"
    resp = await core.searcher.search(
        SearchRequest(namespace="kb", query=query, top_k=3, candidates=6, explain=True)
    )
    assert resp.rerank == "applied" and resp.degraded == [] and "rerank" in resp.timings_ms
    # The same model, called directly over all six candidates, gives the same top 3.
    direct = CrossEncoder(str(tiny_cross_encoder)).predict(
        [
            (query, f"Passage {i} about retrieval, ranking and {w}.")
            for i, w in enumerate(["vectors", "lexical search", "fusion", "caching", "rerankers", "latency"])
        ]
    )
    expected = sorted(range(6), key=lambda i: -direct[i])[:3]
    assert [h.doc_id for h in resp.results] == [f"d{i}" for i in expected]
    assert [h.scores.rerank_rank for h in resp.results] == [1, 2, 3]
    for hit in resp.results:
        s = hit.scores
        assert 1 <= s.fused_rank <= 6 and s.dense_score is not None and s.sparse_rank is not None
        assert hit.score == pytest.approx(hit.scores.rerank)
        assert hit.scores.rerank == pytest.approx(float(direct[int(hit.doc_id[1:])]), abs=1e-5)
        assert 1 <= s.dense_rank <= 6 and 1 <= s.sparse_rank <= 6  # ranks among the six candidates
    by_fused_rank = sorted(resp.results, key=lambda h: h.scores.fused_rank)
    fused = [h.scores.fused for h in by_fused_rank]
    assert fused == sorted(fused, reverse=True)  # the fused rank is the order of the fused score

    off = await core.searcher.search(SearchRequest(namespace="kb", query=query, rerank=False))
    assert off.rerank == "disabled" and all(h.scores.rerank is None for h in off.results)


async def test_failing_reranker_is_flagged_not_hidden(reranking_core: Knowledge) -> None:
    core = reranking_core

    def broken(query: str, passages: list[str], deadline: float | None = None) -> list[float]:
        raise RuntimeError("model crashed")

    core.reranker.score = broken  # type: ignore[union-attr,method-assign]
    resp = await core.searcher.search(SearchRequest(namespace="kb", query="fusion"))
    assert resp.rerank == "failed" and resp.degraded == ["rerank"]
    assert resp.results and all(h.scores.rerank is None for h in resp.results)


async def test_no_reranker_configured_says_so(core: Knowledge) -> None:
    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    resp = await core.searcher.search(SearchRequest(namespace="kb", query="fusion"))
    assert resp.rerank == "not_configured" and resp.degraded == []
    asked = await core.searcher.search(SearchRequest(namespace="kb", query="fusion", rerank=True))
    assert asked.rerank == "not_configured" and asked.degraded == ["rerank"]
