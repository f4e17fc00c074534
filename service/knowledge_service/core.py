"""The retrieval core both front doors call: search, ingest, delete, get and count.

Search: normalise -> cache -> encode (dense + BM25) -> one engine query (prefetch both legs,
fuse) -> drop chunks of superseded document generations -> rerank -> pack -> cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from . import ingest as ingest_pipeline
from .cache import CacheUnavailable, ResultCache, cache_key, open_cache
from .config import Settings
from .encoders import Chunker, DenseEncoder, Reranker, SparseEncoder, model_slug
from .errors import NotFound
from .models import (
    CountRequest,
    CountResponse,
    DeleteRequest,
    DeleteResponse,
    DocumentOut,
    DocumentRef,
    IngestRequest,
    IngestResponse,
    SearchHit,
    SearchRequest,
    SearchResponse,
    StageScores,
)
from .store import Hit, QueryPlan, Store, open_store

log = logging.getLogger(__name__)
T = TypeVar("T")

# Without reranking the engine returns top_k plus this many, so that dropping chunks of a
# document being replaced at that instant still leaves top_k results.
LIVE_MARGIN = 10
MAINTAIN_EVERY_S = 5.0


class KnowledgeCore:
    """Owns the models, the store and the cache; one per process."""

    def __init__(
        self,
        settings: Settings,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        reranker: Reranker | None,
        store: Store,
        cache: ResultCache,
    ) -> None:
        self.settings = settings
        self.dense = dense
        self.sparse = sparse
        self.reranker = reranker
        self.store = store
        self.cache = cache
        self.chunker = Chunker(dense.tokenizer(), settings.chunk_tokens, settings.chunk_overlap)
        self.models_key = [dense.spec, reranker.spec if reranker else None]
        # Changing any of these re-indexes a document on its next ingest.
        self.index_params: list[object] = [
            dense.spec, settings.chunk_tokens, settings.chunk_overlap, settings.bm25_k,
            settings.bm25_b, settings.bm25_avg_len, settings.bm25_language,
        ]
        self._store_pool = ThreadPoolExecutor(settings.store_workers, thread_name_prefix="store")
        self._query_pool = ThreadPoolExecutor(1, thread_name_prefix="query-model")
        self._ingest_pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-model")
        self._ns_locks: dict[str, asyncio.Lock] = {}
        self._maintainer: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, settings: Settings, *, dense: DenseEncoder | None = None
    ) -> KnowledgeCore:
        """Load models (or reuse ``dense``), open the store and the cache, start upkeep."""
        loop = asyncio.get_running_loop()
        if dense is None:
            dense = await loop.run_in_executor(
                None, lambda: DenseEncoder(settings.embed_model, device=settings.device,
                                           batch_size=settings.embed_batch_size)
            )
        reranker = None
        if settings.rerank_model:
            spec = settings.rerank_model
            reranker = await loop.run_in_executor(None, lambda: Reranker(spec, settings.device))
        store = await loop.run_in_executor(
            None, lambda: open_store(settings, dim=dense.dim, model=model_slug(dense.spec))
        )
        core = cls(settings, dense, SparseEncoder(settings), reranker, store, open_cache(settings))
        core._maintainer = asyncio.create_task(core._maintain_forever())
        return core

    async def close(self) -> None:
        if self._maintainer:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
        await self.cache.close()
        await self.run_store(self.store.close)
        for pool in (self._store_pool, self._query_pool, self._ingest_pool):
            pool.shutdown(wait=True)

    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(MAINTAIN_EVERY_S)
            try:
                await self.run_store(self.store.maintain)
            except Exception:
                log.exception("store maintenance failed")

    # ------------------------------------------------------------------ helpers

    async def run_store(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store_pool, fn, *args)

    async def run_ingest_model(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._ingest_pool, fn, *args)

    def namespace_lock(self, namespace: str) -> asyncio.Lock:
        return self._ns_locks.setdefault(namespace, asyncio.Lock())

    async def bump_index_version(self, namespace: str) -> int:
        """Advance the namespace's index version (caller holds the namespace lock)."""
        old = await self.run_store(self.store.get_index_version, namespace)
        # Microseconds since the epoch, and always increasing: unique across replicas too.
        new = max(old + 1, time.time_ns() // 1000)
        await self.run_store(self.store.set_index_version, namespace, new)
        return new

    async def live_hits(self, namespace: str, hits: list[Hit]) -> list[Hit]:
        """Keep only chunks of each document's live generation (hides half-done replacements)."""
        if not hits:
            return hits
        records = await self.run_store(
            self.store.get_docs, namespace, [h.payload["doc_id"] for h in hits]
        )
        return [
            h for h in hits
            if records.get(h.payload["doc_id"], {}).get("generation") == h.payload.get("generation")
        ]

    # ------------------------------------------------------------------ search

    async def search(self, req: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        degraded: list[str] = []
        version = await self.run_store(self.store.get_index_version, req.namespace)
        key = cache_key(ns=req.namespace, v=version, req=req.cache_fields(), models=self.models_key)

        t = time.perf_counter()
        cached = await self._cache_get(key, degraded)
        timings["cache"] = _ms(t)
        if cached is not None:
            resp = SearchResponse.model_validate_json(cached)
            resp.cache_hit, resp.degraded = True, degraded
            resp.timings_ms = {**timings, "total": _ms(started)}
            return resp

        resp = await self._search_uncached(req, version, timings, degraded)
        if "cache" not in degraded:
            t = time.perf_counter()
            await self._cache_set(key, resp.model_dump_json().encode(), degraded)
            timings["cache"] += _ms(t)
        resp.degraded = degraded
        resp.timings_ms = {**timings, "total": _ms(started)}
        return resp

    async def _search_uncached(
        self, req: SearchRequest, version: int, timings: dict[str, float], degraded: list[str]
    ) -> SearchResponse:
        loop = asyncio.get_running_loop()
        t = time.perf_counter()
        dense = None
        if req.mode != "sparse":
            dense = (await loop.run_in_executor(self._query_pool, self.dense.encode, [req.query]))[0]
        sparse = self.sparse.query(req.query) if req.mode != "dense" else None
        timings["encode"] = _ms(t)

        rerank_status = self._rerank_status(req, degraded)
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
        hits = await self.live_hits(req.namespace, await self.run_store(self.store.query, plan))
        ranks = await self._leg_ranks(plan) if req.explain else {}
        timings["query"] = _ms(t)

        rerank_scores: list[float] | None = None
        if rerank_status == "applied" and hits:
            t = time.perf_counter()
            try:
                rerank_scores = await loop.run_in_executor(
                    self._query_pool, self.reranker.score,  # type: ignore[union-attr]
                    req.query, [h.payload.get("text", "") for h in hits],
                )
            except Exception:
                log.exception("reranker failed; serving fused order")
                rerank_status = "failed"
                degraded.append("rerank")
            timings["rerank"] = _ms(t)

        results = [self._hit(h, i, ranks, rerank_scores) for i, h in enumerate(hits)]
        if rerank_scores is not None:
            results.sort(key=lambda r: r.score, reverse=True)
        return SearchResponse(
            results=results[: req.top_k], rerank=rerank_status, index_version=version
        )

    def _rerank_status(self, req: SearchRequest, degraded: list[str]) -> str:
        if req.rerank is False:
            return "disabled"
        if self.reranker is None:
            if req.rerank:  # asked for explicitly: say the stage did not run
                degraded.append("rerank")
            return "not_configured"
        return "applied"

    async def _leg_ranks(self, plan: QueryPlan) -> dict[str, dict[str, int]]:
        """Each chunk's 1-based rank in the dense and in the sparse leg (for explain)."""
        legs = ("dense", "sparse") if plan.mode == "hybrid" else (plan.mode,)
        ranks: dict[str, dict[str, int]] = {}
        for leg in legs:
            leg_plan = QueryPlan(**{**plan.__dict__, "mode": leg, "limit": plan.candidates})
            for i, hit in enumerate(await self.run_store(self.store.query, leg_plan), start=1):
                ranks.setdefault(hit.id, {})[f"{leg}_rank"] = i
        return ranks

    @staticmethod
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

    async def _cache_get(self, key: str, degraded: list[str]) -> bytes | None:
        try:
            return await self.cache.get(key)
        except CacheUnavailable as exc:
            log.warning("cache get failed: %s", exc)
            degraded.append("cache")
            return None

    async def _cache_set(self, key: str, value: bytes, degraded: list[str]) -> None:
        try:
            await self.cache.set(key, value)
        except CacheUnavailable as exc:
            log.warning("cache set failed: %s", exc)
            degraded.append("cache")

    # ------------------------------------------------------------------ documents

    async def ingest(self, req: IngestRequest) -> IngestResponse:
        return await ingest_pipeline.ingest(self, req)

    async def delete(self, req: DeleteRequest) -> DeleteResponse:
        return await ingest_pipeline.delete(self, req)

    async def get_document(self, req: DocumentRef) -> DocumentOut:
        records = await self.run_store(self.store.get_docs, req.namespace, [req.doc_id])
        rec = records.get(req.doc_id)
        if rec is None:
            raise NotFound(f"document {req.doc_id!r} not found in namespace {req.namespace!r}")
        return DocumentOut(
            id=rec["doc_id"], title=rec.get("title"), text=rec["text"],
            metadata=rec.get("metadata") or {}, chunks=rec["chunks"],
            content_hash=rec["content_hash"], updated_at=rec["updated_at"],
        )

    async def count(self, req: CountRequest) -> CountResponse:
        docs = await self.run_store(self.store.count, req.namespace, "doc", req.filter)
        chunks = await self.run_store(self.store.count, req.namespace, "chunk", req.filter)
        version = await self.run_store(self.store.get_index_version, req.namespace)
        return CountResponse(documents=docs, chunks=chunks, index_version=version)

    async def readiness(self) -> dict[str, str]:
        """Each component's state; the service is ready when the store answers."""
        state = {"model": "ok", "store": "ok", "cache": "ok",
                 "reranker": "ok" if self.reranker else "not_configured"}
        try:
            await self.run_store(self.store.ping)
        except Exception as exc:
            state["store"] = f"down: {exc}"
        try:
            await self.cache.ping()
        except CacheUnavailable as exc:
            state["cache"] = f"down: {exc}"
        return state


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
