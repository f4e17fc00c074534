"""Search: resolve the profile -> cache -> encode (dense + BM25) -> one engine query (prefetch both
legs, fuse) -> drop chunks of superseded document generations -> rerank -> threshold -> stitch ->
pack -> cache.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .cache import CacheUnavailable, cache_key
from .encoders import RerankTimeout
from .errors import DeadlineExceeded, InvalidArgument, from_validation_error
from .limits import MAX_EXPLAIN_DEPTH, MAX_OVERRIDE_CANDIDATES, MAX_OVERRIDE_RERANK_DEPTH
from .models import RetrievalSettings, SearchHit, SearchRequest, SearchResponse, StageScores
from .stitching import stitch
from .store import Hit, QueryPlan
from .tracing import tracer

if TYPE_CHECKING:
    from .core import KnowledgeCore

log = logging.getLogger(__name__)

# The engine returns this many more chunks than are needed, so that dropping chunks of a document
# being replaced at that instant, or merging neighbours when stitching, still leaves top_k results.
LIVE_MARGIN = 10


async def search(core: KnowledgeCore, req: SearchRequest, deadline: float | None = None) -> SearchResponse:
    """Search with the request's profile (or the namespace's default) and its overrides."""
    profile = core.profiles.resolve(req.namespace, req.profile)
    overrides = req.override_fields()
    try:
        settings = profile.settings.merged(overrides)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    _check_override_bounds(overrides, settings)
    return await search_with(
        core,
        req,
        settings,
        profile.name,
        profile.version,
        rerank_asked=overrides.get("rerank") is True,
        deadline=deadline,
    )


async def search_with(
    core: KnowledgeCore,
    req: SearchRequest,
    settings: RetrievalSettings,
    profile: str,
    profile_version: int,
    *,
    rerank_asked: bool = False,
    use_cache: bool = True,
    deadline: float | None = None,
) -> SearchResponse:
    """Search with explicit effective settings (evaluation calls this beyond the public limits)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    # Asked for explicitly but no reranker is configured: say the stage did not run.
    degraded: list[str] = ["rerank"] if rerank_asked and core.reranker is None else []
    version = await core.run_store(core.store.get_index_version, req.namespace)
    key = cache_key(
        ns=req.namespace,
        v=version,
        query=req.query,
        filter=req.filter,
        explain=req.explain,
        settings=settings.model_dump(mode="json"),
        profile=[profile, profile_version],
        models=core.models_key,
    )

    with _stage("cache", timings) as span:
        cached = await _cache_get(core, key, degraded) if use_cache else None
        span.set_attribute("cache.hit", cached is not None)
    if cached is not None:
        resp = SearchResponse.model_validate_json(cached)
        resp.cache_hit, resp.degraded = True, degraded
        resp.timings_ms = {**timings, "total": _ms(started)}
        return resp

    _check_deadline(deadline)
    resp = await _search_uncached(core, req, settings, version, timings, degraded, deadline)
    resp.profile, resp.profile_version = profile, profile_version
    if use_cache and not degraded:  # a degraded answer is not the answer to keep
        t = time.perf_counter()
        value = resp.model_dump_json().encode()
        if len(value) <= core.settings.cache_max_entry_bytes:  # a huge answer would evict many small
            await _cache_set(core, key, value, degraded)
        else:
            core.metrics.cache_skipped.labels("too_large").inc()
        timings["cache"] += _ms(t)
    resp.degraded = degraded
    resp.timings_ms = {**timings, "total": _ms(started)}
    return resp


async def live_hits(core: KnowledgeCore, namespace: str, hits: list[Hit]) -> list[Hit]:
    """Keep only chunks of each document's live generation (hides half-done replacements)."""
    if not hits:
        return hits
    records = await core.run_store(core.store.get_docs, namespace, [h.payload["doc_id"] for h in hits])
    return [
        h
        for h in hits
        if records.get(h.payload["doc_id"], {}).get("generation") == h.payload.get("generation")
    ]


async def _search_uncached(
    core: KnowledgeCore,
    req: SearchRequest,
    s: RetrievalSettings,
    version: int,
    timings: dict[str, float],
    degraded: list[str],
    deadline: float | None,
) -> SearchResponse:
    with _stage("encode", timings, mode=s.mode):
        dense = (
            (await core.run_query_model(core.dense.encode, [req.query]))[0] if s.mode != "sparse" else None
        )
        sparse = core.sparse.query(req.query) if s.mode != "dense" else None

    rerank_status = _rerank_status(core, s)
    wanted = s.top_k * (3 if s.stitch else 1) + LIVE_MARGIN
    if rerank_status == "applied":
        wanted = max(wanted, s.rerank_depth)
    plan = QueryPlan(
        namespace=req.namespace,
        mode=s.mode,
        limit=min(s.candidates, wanted),
        candidates=s.candidates,
        dense=dense,
        sparse_indices=list(sparse.indices) if sparse else [],
        sparse_values=list(sparse.values) if sparse else [],
        fusion=s.fusion.method,
        rrf_k=s.fusion.k,
        weights=s.fusion.weights,
        filter=req.filter,
    )
    with _stage(
        "query", timings, backend=core.store.backend, candidates=s.candidates, limit=plan.limit
    ) as span:
        found = await core.run_store(core.store.query, plan)
        hits = await live_hits(core, req.namespace, found)
        ranks = await _leg_ranks(core, plan) if req.explain else {}
        span.set_attributes({"hits": len(found), "hits.live": len(hits)})

    _check_deadline(deadline)
    rerank_scores: list[float] | None = None
    if rerank_status == "applied" and hits and deadline is not None:
        if deadline - time.monotonic() < core.rerank_estimate_s:  # it would overrun: cut the stage
            rerank_status = "skipped"
            degraded.append("rerank")
    if rerank_status == "applied" and hits:
        with _stage("rerank", timings, candidates=min(len(hits), s.rerank_depth)):
            t = time.perf_counter()
            head = hits[: s.rerank_depth]
            budget = time.monotonic() + core.settings.rerank_budget_ms / 1000
            try:
                rerank_scores = await core.run_query_model(
                    core.reranker.score,  # type: ignore[union-attr]
                    req.query,
                    [h.payload.get("text", "") for h in head],
                    min(budget, deadline) if deadline is not None else budget,
                )
                hits = head
                spent = time.perf_counter() - t
                core.rerank_estimate_s = (
                    spent if not core.rerank_estimate_s else 0.8 * core.rerank_estimate_s + 0.2 * spent
                )
            except RerankTimeout as exc:
                log.warning("rerank cut: %s; serving fused order", exc)
                rerank_status = "skipped"
                degraded.append("rerank")
            except Exception:
                log.exception("reranker failed; serving fused order")
                rerank_status = "failed"
                degraded.append("rerank")

    results = [_hit(h, i, ranks, rerank_scores) for i, h in enumerate(hits)]
    if rerank_scores is not None:
        results.sort(key=lambda r: r.score, reverse=True)
        for rank, r in enumerate(results, start=1):
            r.scores.rerank_rank = rank
    if s.score_threshold is not None:
        results = [r for r in results if r.score >= s.score_threshold]
    if s.stitch:
        results = stitch([(r, h.payload.get("chunk_index", 0)) for r, h in _pair(results, hits)])
    return SearchResponse(results=results[: s.top_k], rerank=rerank_status, index_version=version)


def _pair(results: list[SearchHit], hits: list[Hit]) -> list[tuple[SearchHit, Hit]]:
    by_chunk = {h.payload["chunk_id"]: h for h in hits}
    return [(r, by_chunk[r.chunk_id]) for r in results]


@contextlib.contextmanager
def _stage(name: str, timings: dict[str, float], **attributes: Any) -> Iterator[Any]:
    """Time one stage into ``timings`` and trace it as a span ``search.<name>``."""
    started = time.perf_counter()
    with tracer.start_as_current_span(f"search.{name}", attributes=attributes) as span:
        try:
            yield span
        finally:
            timings[name] = timings.get(name, 0.0) + _ms(started)


def _check_override_bounds(overrides: dict[str, Any], s: RetrievalSettings) -> None:
    """A single request may ask for less depth than a profile may hold (profiles are admin-set)."""
    for name, bound in (("candidates", MAX_OVERRIDE_CANDIDATES), ("rerank_depth", MAX_OVERRIDE_RERANK_DEPTH)):
        if name in overrides and getattr(s, name) > bound:
            raise InvalidArgument(
                f"{name}: at most {bound} in a request (got {getattr(s, name)}); set a deeper {name} in a "
                "profile instead",
                field=name,
            )


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded("the request's deadline passed before the search finished; allow more time")


def _rerank_status(core: KnowledgeCore, s: RetrievalSettings) -> str:
    if not s.rerank:
        return "disabled"
    return "applied" if core.reranker is not None else "not_configured"


async def _leg_ranks(core: KnowledgeCore, plan: QueryPlan) -> dict[str, dict[str, float]]:
    """Each chunk's 1-based rank and score in the dense and in the sparse leg (for explain)."""
    legs = ("dense", "sparse") if plan.mode == "hybrid" else (plan.mode,)
    ranks: dict[str, dict[str, float]] = {}
    depth = min(plan.candidates, MAX_EXPLAIN_DEPTH)  # deeper ranks are not reported
    for leg in legs:
        leg_plan = QueryPlan(**{**plan.__dict__, "mode": leg, "limit": depth})
        for i, hit in enumerate(await core.run_store(core.store.query, leg_plan), start=1):
            ranks.setdefault(hit.id, {}).update({f"{leg}_rank": i, f"{leg}_score": hit.score})
    return ranks


def _hit(hit: Hit, i: int, ranks: dict[str, dict[str, float]], rerank: list[float] | None) -> SearchHit:
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
