"""Search: resolve the profile -> cache -> encode (dense + BM25) -> one engine query (prefetch both
legs, fuse) -> drop chunks of superseded document generations -> rerank -> threshold -> stitch ->
pack -> cache.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from knowledge_service.core.batching import MicroBatcher
from knowledge_service.core.errors import DeadlineExceeded, InvalidArgument, from_validation_error
from knowledge_service.core.limits import MAX_OVERRIDE_CANDIDATES, MAX_OVERRIDE_RERANK_DEPTH
from knowledge_service.models.base import SparseModel
from knowledge_service.ops import tracing
from knowledge_service.ops.admission import Gate, admitted
from knowledge_service.ops.metrics import Metrics
from knowledge_service.pipelines.profiles.registry import ProfileRegistry
from knowledge_service.pipelines.search import retrieve
from knowledge_service.pipelines.search.rerank import RerankStage
from knowledge_service.pipelines.search.stitching import stitch
from knowledge_service.schemas.search import RetrievalSettings, SearchRequest, SearchResponse
from knowledge_service.storage.cache import CacheUnavailable, DecodedAnswers, ResultCache, cache_key
from knowledge_service.storage.runner import AsyncStore

log = logging.getLogger(__name__)

# Engine queries per search when documents are replaced while it runs (each retry sees the flip).
REQUERY_ATTEMPTS = 3


class Searcher:
    """The search pipeline; one per process, shared by both front doors and the evaluations."""

    def __init__(
        self,
        *,
        profiles: ProfileRegistry,
        store: AsyncStore,
        cache: ResultCache,
        queries: MicroBatcher[str, list[float]],
        sparse: SparseModel,
        rerank: RerankStage,
        gate: Gate,
        metrics: Metrics,
        models_key: list[object],
        cache_max_entry_bytes: int,
        decoded: DecodedAnswers[SearchResponse],
    ) -> None:
        self._profiles = profiles
        self._store = store
        self._cache = cache
        self._queries = queries
        self._sparse = sparse
        self.rerank = rerank
        self._gate = gate
        self._metrics = metrics
        self._models_key = models_key
        self._cache_max_entry_bytes = cache_max_entry_bytes
        self._decoded = decoded

    @property
    def limit(self) -> int:
        """Searches this replica runs at once (KNOWLEDGE_MAX_CONCURRENT_SEARCHES)."""
        return self._gate.limit

    async def search(self, req: SearchRequest, deadline: float | None = None) -> SearchResponse:
        """Search with the request's profile (or the namespace's default) and its overrides;
        ``deadline`` (time.monotonic) cuts stages that would overrun it."""
        profile = self._profiles.resolve(req.namespace, req.profile)
        overrides = req.override_fields()
        try:
            settings = profile.settings.merged(overrides)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        _check_override_bounds(overrides, settings)
        async with self._gate.enter():
            resp = await self._traced(
                req,
                settings,
                profile.name,
                profile.version,
                rerank_asked=overrides.get("rerank") is True,
                use_cache=True,
                deadline=deadline,
            )
        self._metrics.observe_search(resp.timings_ms, resp.cache_hit, resp.degraded)
        return resp

    async def search_with(
        self,
        req: SearchRequest,
        settings: RetrievalSettings,
        profile: str,
        profile_version: int,
        *,
        refusal: str,
    ) -> SearchResponse:
        """Search with explicit effective settings, uncached (evaluations: beyond the public
        limits). It queues with the searches; with no slot in time, Overloaded says ``refusal``."""
        async with admitted(self._gate, refusal):
            return await self._traced(req, settings, profile, profile_version, use_cache=False)

    async def _traced(
        self, req: SearchRequest, settings: RetrievalSettings, profile: str, version: int, **kw: Any
    ) -> SearchResponse:
        with tracing.span("search", {"namespace": req.namespace}) as span:
            resp = await self._search(req, settings, profile, version, **kw)
            span.set_attributes(
                {
                    "profile": resp.profile,
                    "profile.version": resp.profile_version,
                    "cache.hit": resp.cache_hit,
                    "results": len(resp.results),
                    "backend": self._store.backend,
                }
            )
        return resp

    async def _search(
        self,
        req: SearchRequest,
        settings: RetrievalSettings,
        profile: str,
        profile_version: int,
        *,
        rerank_asked: bool = False,
        use_cache: bool,
        deadline: float | None = None,
    ) -> SearchResponse:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        # Asked for explicitly but no reranker is configured: say the stage did not run.
        degraded: list[str] = ["rerank"] if rerank_asked and not self.rerank.configured else []
        version = await self._store.get_index_version(req.namespace)
        key = cache_key(
            ns=req.namespace,
            v=version,
            query=req.query,
            filter=req.filter,
            explain=req.explain,
            settings=settings.model_dump(mode="json"),
            profile=[profile, profile_version],
            models=self._models_key,
        )

        with _stage("cache", timings) as span:
            cached = await self._cached(key, degraded) if use_cache else None
            span.set_attribute("cache.hit", cached is not None)
        if cached is not None:
            resp = _copy(cached)
            resp.cache_hit, resp.degraded = True, degraded
            resp.timings_ms = {**timings, "total": _ms(started)}
            return resp

        _check_deadline(deadline)
        resp = await self._uncached(req, settings, version, timings, degraded, deadline)
        resp.profile, resp.profile_version = profile, profile_version
        if use_cache and not degraded:  # a degraded answer is not the answer to keep
            t = time.perf_counter()
            value = resp.model_dump_json().encode()
            if len(value) <= self._cache_max_entry_bytes:  # a huge answer would evict many small
                if await self._cache_set(key, value, degraded):
                    self._decoded.put(key, _copy(resp))
            else:
                self._metrics.cache_skipped.labels("too_large").inc()
            timings["cache"] += _ms(t)
        resp.degraded = degraded
        resp.timings_ms = {**timings, "total": _ms(started)}
        return resp

    async def _uncached(
        self,
        req: SearchRequest,
        s: RetrievalSettings,
        version: int,
        timings: dict[str, float],
        degraded: list[str],
        deadline: float | None,
    ) -> SearchResponse:
        with _stage("encode", timings, mode=s.mode):
            dense = await self._queries.submit(req.query) if s.mode != "sparse" else None
            sparse = self._sparse.query(req.query) if s.mode != "dense" else None

        rerank_status = self.rerank.status(s.rerank)
        query = retrieve.plan(
            req.namespace,
            s,
            dense,
            (list(sparse.indices), list(sparse.values)) if sparse else None,
            req.filter,
            rerank_depth=s.rerank_depth if rerank_status == "applied" else None,
        )
        with _stage(
            "query", timings, backend=self._store.backend, candidates=s.candidates, limit=query.limit
        ) as span:
            for _ in range(REQUERY_ATTEMPTS):  # a replacement between the query and the read: again
                found = await self._store.query(query)
                hits, replaced = await retrieve.live_hits(self._store, req.namespace, found)
                if not replaced:
                    break
            ranks = await retrieve.leg_ranks(self._store, query) if req.explain else {}
            span.set_attributes({"hits": len(found), "hits.live": len(hits)})

        _check_deadline(deadline)
        rerank_scores: list[float] | None = None
        if rerank_status == "applied" and hits and self.rerank.would_overrun(deadline):
            rerank_status = "skipped"  # it would overrun the deadline: cut the stage
        elif rerank_status == "applied" and hits:
            head = hits[: s.rerank_depth]
            with _stage("rerank", timings, candidates=len(head)):
                passages = [h.payload.get("text", "") for h in head]
                rerank_scores, rerank_status = await self.rerank.score(req.query, passages, deadline)
            if rerank_scores is not None:
                hits = head
        if rerank_status in ("skipped", "failed"):
            degraded.append("rerank")

        results = [retrieve.to_result(h, i, ranks, rerank_scores) for i, h in enumerate(hits)]
        if rerank_scores is not None:
            results.sort(key=lambda r: r.score, reverse=True)
            for rank, r in enumerate(results, start=1):
                r.scores.rerank_rank = rank
        if s.score_threshold is not None:
            results = [r for r in results if r.score >= s.score_threshold]
        if s.stitch:
            by_chunk = {h.payload["chunk_id"]: h for h in hits}
            results = stitch([(r, by_chunk[r.chunk_id].payload.get("chunk_index", 0)) for r in results])
        return SearchResponse(results=results[: s.top_k], rerank=rerank_status, index_version=version)

    async def _cached(self, key: str, degraded: list[str]) -> SearchResponse | None:
        """The kept answer for ``key``: decoded in process, else from the cache (then kept decoded)."""
        if (resp := self._decoded.get(key)) is not None:
            return resp
        try:
            raw = await self._cache.get(key)
        except CacheUnavailable as exc:
            log.warning("cache get failed: %s", exc)
            degraded.append("cache")
            return None
        if raw is None:
            return None
        resp = SearchResponse.model_validate_json(raw)
        self._decoded.put(key, resp)
        return resp

    async def _cache_set(self, key: str, value: bytes, degraded: list[str]) -> bool:
        try:
            await self._cache.set(key, value)
        except CacheUnavailable as exc:
            log.warning("cache set failed: %s", exc)
            degraded.append("cache")
            return False
        return True


@contextlib.contextmanager
def _stage(name: str, timings: dict[str, float], **attributes: Any) -> Iterator[Any]:
    """Time one stage into ``timings`` and trace it as a span ``search.<name>``."""
    started = time.perf_counter()
    with tracing.span(f"search.{name}", attributes) as span:
        try:
            yield span
        finally:
            timings[name] = timings.get(name, 0.0) + _ms(started)


def _copy(resp: SearchResponse) -> SearchResponse:
    """A kept answer's copy to hand out (or to keep): its own fields and list of results, so the
    kept one never changes; the results themselves are shared and only read."""
    return resp.model_copy(update={"results": list(resp.results)})


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


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
