"""BM25 in the engine is a faithful BM25: within 0.02 nDCG@10 of rank-bm25's BM25Okapi.

Both sides see the same tokens (the engine's own tokeniser, see evaluation.engine_tokens), the same
k1 and b, and the corpus's real average length; the engine applies IDF per namespace at query time.
"""

from __future__ import annotations

import statistics

import pytest

from conftest import dataset
from knowledge_service.core.config import Settings
from knowledge_service.models.sparse import SparseEncoder
from knowledge_service.pipelines.evaluation.datasets import load_beir
from knowledge_service.pipelines.evaluation.scoring import evaluate
from knowledge_service.storage import ChunkPoint, QueryPlan
from knowledge_service.storage.edge import EdgeStore
from knowledge_service.storage.points import chunk_point_id
from knowledge_service.storage.remote import RemoteStore
from oracle import engine_tokens, rank_bm25_run

DIM = 4


@pytest.mark.parametrize("backend", ["edge", "qdrant-client"])
def test_engine_bm25_matches_rank_bm25_on_cranfield(backend: str, settings: Settings) -> None:
    data = load_beir(dataset("cranfield"), "test")
    texts = data.texts()
    probe = SparseEncoder(settings).bm25
    avg_len = statistics.fmean(len(engine_tokens(t, probe)) for t in texts.values())
    settings = settings.model_copy(update={"bm25_avg_len": avg_len})
    sparse = SparseEncoder(settings)

    reference = evaluate(rank_bm25_run(texts, data.queries, sparse.bm25, k1=1.2, b=0.75), data.qrels)

    if backend == "edge":
        store = EdgeStore(settings, dim=DIM, model="bm25-check")
    else:
        store = RemoteStore(
            settings.model_copy(update={"qdrant_url": ":memory:"}), dim=DIM, model="bm25-check"
        )
    try:
        points = []
        for doc_id, text in texts.items():
            vec = sparse.document(text)
            points.append(
                ChunkPoint(
                    id=chunk_point_id("bm25", doc_id, 1, 0),
                    dense=[1.0, 0.0, 0.0, 0.0],
                    sparse_indices=list(vec.indices),
                    sparse_values=list(vec.values),
                    payload={"kind": "chunk", "namespace": "bm25", "doc_id": doc_id},
                )
            )
        for start in range(0, len(points), 500):
            store.upsert_chunks(points[start : start + 500])
        run = {}
        for qid, query in data.queries.items():
            q = sparse.query(query)
            hits = store.query(
                QueryPlan(
                    namespace="bm25",
                    mode="sparse",
                    limit=100,
                    candidates=100,
                    sparse_indices=list(q.indices),
                    sparse_values=list(q.values),
                )
            )
            run[qid] = {h.payload["doc_id"]: h.score for h in hits}
        ours = evaluate(run, data.qrels)
    finally:
        store.close()

    print(
        f"\n{backend}: engine BM25 nDCG@10={ours['ndcg@10']:.4f}, "
        f"rank-bm25 BM25Okapi={reference['ndcg@10']:.4f}"
    )
    assert ours["ndcg@10"] == pytest.approx(reference["ndcg@10"], abs=0.02)
    assert ours["recall@100"] == pytest.approx(reference["recall@100"], abs=0.03)
