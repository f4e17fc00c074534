"""BM25's IDF is the namespace's own: when one namespace holds every chunk of the Edge shard, the
engine's IDF (no per-query count over a filter) gives exactly the scores the per-namespace IDF
gives, and once another namespace has chunks the per-namespace IDF is used again."""

from __future__ import annotations

import pytest

from knowledge_service.app import Knowledge
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.storage.edge import EdgeStore
from knowledge_service.storage.points import QueryPlan

A_DOCS = [
    {"id": f"a{i}", "text": f"Glaciers retreat {i} times faster where the fjord water is warm and salty."}
    for i in range(6)
] + [{"id": "a-other", "text": "Volcanoes and glaciers meet where ice covers a caldera."}]
# the same words in other proportions: shared IDF would move the scores of A's documents
B_DOCS = [
    {"id": f"b{i}", "text": "Fjord fjord fjord salty water; glaciers elsewhere. " * (i + 1)} for i in range(9)
]


def scores(store: EdgeStore, core: Knowledge, query: str) -> dict[str, float]:
    sparse = core.searcher._sparse.query(query)
    indices, values = list(sparse.indices), list(sparse.values)
    plan = QueryPlan("a", "sparse", limit=20, candidates=20, sparse_indices=indices, sparse_values=values)
    return {hit.payload["doc_id"]: hit.score for hit in store.query(plan)}


async def test_one_namespace_uses_the_engine_idf_with_the_same_scores(core: Knowledge) -> None:
    store = core.stores[0]
    assert isinstance(store, EdgeStore)
    await core.documents.ingest(IngestRequest(namespace="a", documents=A_DOCS))
    assert store._chunk_namespaces == {"a"}
    alone = scores(store, core, "salty fjord glaciers")
    assert len(alone) == len(A_DOCS)

    store._chunk_namespaces.add("elsewhere")  # as if another namespace had chunks: the filtered IDF
    assert scores(store, core, "salty fjord glaciers") == pytest.approx(alone, rel=1e-5)
    store._chunk_namespaces.discard("elsewhere")

    await core.documents.ingest(IngestRequest(namespace="b", documents=B_DOCS))
    assert store._chunk_namespaces == {"a", "b"}
    assert scores(store, core, "salty fjord glaciers") == pytest.approx(alone, rel=1e-5)  # A's own IDF
    assert store._namespaces_with_chunks() == {"a", "b"}  # what a reopened store starts from
