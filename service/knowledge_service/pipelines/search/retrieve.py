"""The engine part of a search: plan one hybrid query, keep live chunks, rank the legs (explain),
and turn engine hits into results."""

from __future__ import annotations

from knowledge_service.core.limits import MAX_EXPLAIN_DEPTH
from knowledge_service.schemas.search import RetrievalSettings, SearchHit, StageScores
from knowledge_service.storage import Hit, QueryPlan
from knowledge_service.storage.runner import AsyncStore

# The engine returns this many more chunks than are needed, so that dropping chunks of a document
# being replaced at that instant, or merging neighbours when stitching, still leaves top_k results.
LIVE_MARGIN = 10


def plan(
    namespace: str,
    s: RetrievalSettings,
    dense: list[float] | None,
    sparse: tuple[list[int], list[float]] | None,
    flt: dict | None,
    *,
    rerank_depth: int | None,
) -> QueryPlan:
    """One engine query: both legs (as the mode says) fused, deep enough for what follows."""
    wanted = s.top_k * (3 if s.stitch else 1) + LIVE_MARGIN
    if rerank_depth is not None:
        wanted = max(wanted, rerank_depth)
    return QueryPlan(
        namespace=namespace,
        mode=s.mode,
        limit=min(s.candidates, wanted),
        candidates=s.candidates,
        dense=dense,
        sparse_indices=sparse[0] if sparse else [],
        sparse_values=sparse[1] if sparse else [],
        fusion=s.fusion.method,
        rrf_k=s.fusion.k,
        weights=s.fusion.weights,
        filter=flt,
    )


async def live_hits(store: AsyncStore, namespace: str, hits: list[Hit]) -> tuple[list[Hit], bool]:
    """Keep only chunks of each document's live generation (hides half-done replacements).

    Also says whether a document was replaced since the engine query: one of its chunks names an
    older generation than its record. The new generation's chunks were written before the flip,
    so querying again finds them (the document would otherwise be missing from this answer).
    """
    if not hits:
        return hits, False
    generations = await store.live_generations(
        namespace, list(dict.fromkeys(h.payload["doc_id"] for h in hits))
    )
    live, replaced = [], False
    for h in hits:
        generation = generations.get(h.payload["doc_id"])
        if generation is not None and generation == h.payload.get("generation"):
            live.append(h)
        elif generation is not None:
            replaced = True
    return live, replaced


async def leg_ranks(store: AsyncStore, query: QueryPlan) -> dict[str, dict[str, float]]:
    """Each chunk's 1-based rank and score in the dense and in the sparse leg (for explain)."""
    legs = ("dense", "sparse") if query.mode == "hybrid" else (query.mode,)
    ranks: dict[str, dict[str, float]] = {}
    depth = min(query.candidates, MAX_EXPLAIN_DEPTH)  # deeper ranks are not reported
    for leg in legs:
        leg_plan = QueryPlan(**{**query.__dict__, "mode": leg, "limit": depth})
        for i, hit in enumerate(await store.query(leg_plan), start=1):
            ranks.setdefault(hit.id, {}).update({f"{leg}_rank": i, f"{leg}_score": hit.score})
    return ranks


def to_result(hit: Hit, i: int, ranks: dict[str, dict[str, float]], rerank: list[float] | None) -> SearchHit:
    p = hit.payload
    return SearchHit(
        doc_id=p["doc_id"],
        chunk_id=p["chunk_id"],
        text=p.get("text", ""),
        title=p.get("title"),
        metadata=p.get("metadata") or {},
        score=rerank[i] if rerank is not None else hit.score,
        scores=StageScores(
            fused=hit.score,
            fused_rank=i + 1,
            rerank=rerank[i] if rerank is not None else None,
            **ranks.get(hit.id, {}),
        ),
    )
