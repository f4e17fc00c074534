"""Edge index optimisation runs only once writes have gone quiet, and changes no result."""

from __future__ import annotations

import time

import pytest

from knowledge_service.app import Knowledge
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import SearchRequest
from knowledge_service.storage import edge


class Clock:
    """The Edge store's clock (its module's ``time``), moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now


async def test_optimise_after_quiet_period_keeps_results(
    core: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(edge, "time", clock)
    store = core.stores[0]
    store._idle_s, store._min_points = 0.2, 1  # type: ignore[attr-defined]
    docs = [
        {"id": f"d{i}", "text": f"Document {i} is about topic {i % 5} and nothing else."} for i in range(40)
    ]
    await core.documents.ingest(IngestRequest(namespace="kb", documents=docs))
    before = await core.searcher.search(SearchRequest(namespace="kb", query="topic 3", top_k=8, rerank=False))
    assert store.maintain() is False  # writes are too recent
    clock.now += 0.1
    assert store.maintain() is False  # quiet for half the idle period: not yet
    clock.now += 0.15
    assert store.maintain() is True  # quiet now: optimised
    assert store.maintain() is False  # nothing new since
    after = await core.searcher.search(SearchRequest(namespace="kb", query="topic 3 ", top_k=8, rerank=False))
    assert [h.chunk_id for h in after.results] == [h.chunk_id for h in before.results]
