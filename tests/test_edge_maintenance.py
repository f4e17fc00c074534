"""Edge index optimisation runs only once writes have gone quiet, and changes no result."""

from __future__ import annotations

import time

from knowledge_service.app import Knowledge
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import SearchRequest


async def test_optimise_after_quiet_period_keeps_results(core: Knowledge) -> None:
    store = core.stores[0]
    store._idle_s, store._min_points = 0.2, 1  # type: ignore[attr-defined]
    docs = [
        {"id": f"d{i}", "text": f"Document {i} is about topic {i % 5} and nothing else."} for i in range(40)
    ]
    await core.documents.ingest(IngestRequest(namespace="kb", documents=docs))
    before = await core.searcher.search(SearchRequest(namespace="kb", query="topic 3", top_k=8, rerank=False))
    assert store.maintain() is False  # writes are too recent
    time.sleep(0.25)
    assert store.maintain() is True  # quiet now: optimised
    assert store.maintain() is False  # nothing new since
    after = await core.searcher.search(SearchRequest(namespace="kb", query="topic 3 ", top_k=8, rerank=False))
    assert [h.chunk_id for h in after.results] == [h.chunk_id for h in before.results]
