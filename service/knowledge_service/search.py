"""Search: normalise -> cache -> encode (dense + BM25) -> one engine query (prefetch both legs,
fuse) -> drop chunks of superseded document generations -> rerank -> pack -> cache.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .cache import CacheUnavailable, cache_key
from .models import SearchHit, SearchRequest, SearchResponse, StageScores
from .store import Hit, QueryPlan

if TYPE_CHECKING:
    from .core import KnowledgeCore

log = logging.getLogger(__name__)

# Without reranking the engine returns top_k plus this many, so that dropping chunks of a
# document being replaced at that instant still leaves top_k results.
LIVE_MARGIN = 10


async def live_hits(core: KnowledgeCore, namespace: str, hits: list[Hit]) -> list[Hit]:
    """Keep only chunks of each document's live generation (hides half-done replacements)."""
    if not hits:
        return hits
    records = await core.run_store(
        core.store.get_docs, namespace, [h.payload["doc_id"] for h in hits]
    )
    return [
        h for h in hits
        if records.get(h.payload["doc_id"], {}).get("generation") == h.payload.get("generation")
    ]


async def search(core: KnowledgeCore, req: SearchRequest) -> SearchResponse:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    degraded: list[str] = []
    version = await core.run_store(core.store.get_index_version, req.namespace)
    key = cache_key(ns=req.namespace, v=version, req=req.cache_fields(), models=core.models_key)

    t = time.perf_counter()
    cached = await _cache_get(core, key, degraded)
    timings["cache"] = _ms(t)
    if cached is not None:
        resp = SearchResponse.model_validate_json(cached)
        resp.cache_hit, resp.degraded = True, degraded
        resp.timings_ms = {**timings, "total": _ms(started)}
        return resp

    resp = await _search_uncached(core, req, version, timings, degraded)
    if "cache" not in degraded:
        t = time.perf_counter()
        await _cache_set(core, key, resp.model_dump_json().encode(), degraded)
        timings["cache"] += _ms(t)
    resp.degraded = degraded
    resp.timings_ms = {**timings, "total": _ms(started)}
    return resp


async def _search_uncached(
    core: KnowledgeCore, req: SearchRequest, version: int, timings: dict[str, float], degraded: list[str]
) -> SearchResponse:
    t = time.perf_counter()
    dense = None
    if req.mode != "sparse":
        dense = (await core.run_query_model(core.dense.encode, [req.query]))[0]
    sparse = core.sparse.query(req.query) if req.mode != "dense" else None
    timings["encode"] = _ms(t)

    rerank_status = _rerank_status(core, req, degraded)
    depth = req.candidates if rerank_status == "applied" else min(
        req.candidates, req.top_k + LIVE_MARGIN
    )
    plan = QueryPlan(
        namespace=req.namespace, mode=req.mode, limit=depth, candidates=req.candidates,
        dense=dense,
        sparse_indices=list(sparse.indices) if sparse else [],
        sparse_values=list(sparse.values) if sparse else [],
        fusion=req.fusion.method, rrf_k=req.fusion.k, weights=req.fusion.weights,
        filter=req.filter,
    )
    t = time.perf_counter()
    hits = await live_hits(core, req.namespace, await core.run_store(core.store.query, plan))
    ranks = await _leg_ranks(core, plan) if req.explain else {}
    timings["query"] = _ms(t)

    rerank_scores: list[float] | None = None
    if rerank_status == "applied" and hits:
        t = time.perf_counter()
        try:
            rerank_scores = await core.run_query_model(
                core.reranker.score,  # type: ignore[union-attr]
                req.query, [h.payload.get("text", "") for h in hits],
            )
        except Exception:
            log.exception("reranker failed; serving fused order")
            rerank_status = "failed"
            degraded.append("rerank")
        timings["rerank"] = _ms(t)

    results = [_hit(h, i, ranks, rerank_scores) for i, h in enumerate(hits)]
    if rerank_scores is not None:
        results.sort(key=lambda r: r.score, reverse=True)
    return SearchResponse(
        results=results[: req.top_k], rerank=rerank_status, index_version=version
    )


def _rerank_status(core: KnowledgeCore, req: SearchRequest, degraded: list[str]) -> str:
    if req.rerank is False:
        return "disabled"
    if core.reranker is None:
        if req.rerank:  # asked for explicitly: say the stage did not run
            degraded.append("rerank")
        return "not_configured"
    return "applied"


async def _leg_ranks(core: KnowledgeCore, plan: QueryPlan) -> dict[str, dict[str, int]]:
    """Each chunk's 1-based rank in the dense and in the sparse leg (for explain)."""
    legs = ("dense", "sparse") if plan.mode == "hybrid" else (plan.mode,)
    ranks: dict[str, dict[str, int]] = {}
    for leg in legs:
        leg_plan = QueryPlan(**{**plan.__dict__, "mode": leg, "limit": plan.candidates})
        for i, hit in enumerate(await core.run_store(core.store.query, leg_plan), start=1):
            ranks.setdefault(hit.id, {})[f"{leg}_rank"] = i
    return ranks


def _hit(
    hit: Hit, i: int, ranks: dict[str, dict[str, int]], rerank: list[float] | None
) -> SearchHit:
    p = hit.payload
    return SearchHit(
        doc_id=p["doc_id"], chunk_id=p["chunk_id"], text=p.get("text", ""),
        title=p.get("title"), metadata=p.get("metadata") or {},
        score=rerank[i] if rerank is not None else hit.score,
        scores=StageScores(
            fused=hit.score, rerank=rerank[i] if rerank is not None else None,
            **ranks.get(hit.id, {}),
        ),
    )


async def _cache_get(core: KnowledgeCore, key: str, degraded: list[str]) -> bytes | None:
    try:
        return await core.cache.get(key)
    except CacheUnavailable as exc:
        log.warning("cache get failed: %s", exc)
        degraded.append("cache")
        return None


async def _cache_set(core: KnowledgeCore, key: str, value: bytes, degraded: list[str]) -> None:
    try:
        await core.cache.set(key, value)
    except CacheUnavailable as exc:
        log.warning("cache set failed: %s", exc)
        degraded.append("cache")


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
