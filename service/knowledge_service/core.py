"""The retrieval core both front doors call: search, ingest, delete, get and count.

It owns the models, the store, the cache and the thread pools; the pipelines live in
``search.py`` and ``ingest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from . import evaluations
from . import ingest as ingest_pipeline
from . import search as search_pipeline
from .admission import Gate
from .auth import KeyRing
from .cache import CacheUnavailable, ResultCache, open_cache
from .comparison import Comparison
from .config import Settings
from .encoders import Chunker, DenseEncoder, Reranker, SparseEncoder, model_slug
from .errors import NotFound
from .evaluations import EvaluationRequest
from .metrics import Metrics
from .models import (
    CountRequest,
    CountResponse,
    DeleteRequest,
    DeleteResponse,
    DocumentOut,
    DocumentRef,
    IngestRequest,
    IngestResponse,
    PutProfileRequest,
    SearchRequest,
    SearchResponse,
)
from .profiles import ProfileOut, ProfileRegistry
from .store import MetaStore, Store, open_meta_store, open_store
from .tracing import tracer

log = logging.getLogger(__name__)
T = TypeVar("T")

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
        meta: MetaStore,
        cache: ResultCache,
        *,
        owns_store: bool = True,
    ) -> None:
        self.settings = settings
        self.dense = dense
        self.sparse = sparse
        self.reranker = reranker
        self.store = store
        self.meta = meta
        self.cache = cache
        self.keys = KeyRing.from_settings(settings)
        self.search_gate = Gate(
            "search", settings.max_concurrent_searches, settings.queue_wait_s, settings.retry_after_s
        )
        self.ingest_gate = Gate(
            "ingest", settings.max_concurrent_ingests, settings.queue_wait_s, settings.retry_after_s
        )
        self.evaluation_gate = Gate(  # evaluations and require_eval checks; a busy replica answers 429
            "evaluation",
            settings.max_concurrent_evaluations,
            evaluations.EVALUATION_QUEUE_WAIT_S,
            settings.retry_after_s,
        )
        self.rerank_estimate_s = 0.0  # recent rerank time, to skip the stage when a deadline is near
        self.metrics = Metrics()
        for gate in (self.search_gate, self.ingest_gate):
            self.metrics.in_flight.labels(gate.name).set_function(lambda g=gate: g.active)
            self.metrics.queued.labels(gate.name).set_function(lambda g=gate: g.waiting)
        self._owns_store = owns_store
        self.chunker = Chunker(dense.tokenizer(), settings.chunk_tokens, settings.chunk_overlap)
        self.models_key = [dense.spec, reranker.spec if reranker else None]
        # Changing any of these re-indexes a document on its next ingest.
        self.index_params: list[object] = [
            dense.spec,
            settings.chunk_tokens,
            settings.chunk_overlap,
            settings.bm25_k,
            settings.bm25_b,
            settings.bm25_avg_len,
            settings.bm25_language,
        ]
        self._store_pool = ThreadPoolExecutor(settings.store_workers, thread_name_prefix="store")
        self._query_pool = ThreadPoolExecutor(1, thread_name_prefix="query-model")
        self._ingest_pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-model")
        self._ns_locks: dict[str, asyncio.Lock] = {}
        self._maintainer: asyncio.Task[None] | None = None
        self.profiles = ProfileRegistry(
            meta, self.run_store, poll_s=settings.profile_poll_s, redis_url=settings.redis_url
        )

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        dense: DenseEncoder | None = None,
        stores: tuple[Store, MetaStore] | None = None,
    ) -> KnowledgeCore:
        """Load models (or reuse ``dense``), open the store and the cache, start upkeep.

        ``stores`` shares an already open store (and its meta store) with another core in this
        process, as replicas share a Qdrant server; the core that opened them closes them.
        """
        loop = asyncio.get_running_loop()
        if dense is None:
            dense = await loop.run_in_executor(
                None,
                lambda: DenseEncoder(
                    settings.embed_model, device=settings.device, batch_size=settings.embed_batch_size
                ),
            )
        reranker = None
        if settings.rerank_model:
            spec = settings.rerank_model
            reranker = await loop.run_in_executor(None, lambda: Reranker(spec, settings.device))
        if stores is None:
            store = await loop.run_in_executor(
                None, lambda: open_store(settings, dim=dense.dim, model=model_slug(dense.spec))
            )
            meta = await loop.run_in_executor(None, open_meta_store, settings, store)
        else:
            store, meta = stores
        core = cls(
            settings,
            dense,
            SparseEncoder(settings),
            reranker,
            store,
            meta,
            open_cache(settings),
            owns_store=stores is None,
        )
        await core.profiles.start()
        core._maintainer = asyncio.create_task(core._maintain_forever())
        return core

    async def close(self) -> None:
        if self._maintainer:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
        await self.profiles.stop()
        await self.cache.close()
        if self._owns_store:
            await self.run_store(self.meta.close)
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

    async def run_query_model(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._query_pool, fn, *args)

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

    # ------------------------------------------------------------------ search

    async def search(self, req: SearchRequest, deadline: float | None = None) -> SearchResponse:
        """Search; ``deadline`` (time.monotonic) cuts stages that would overrun it."""
        async with self.search_gate.enter():
            with tracer.start_as_current_span("search", attributes={"namespace": req.namespace}) as span:
                resp = await search_pipeline.search(self, req, deadline)
                span.set_attributes(
                    {
                        "profile": resp.profile,
                        "profile.version": resp.profile_version,
                        "cache.hit": resp.cache_hit,
                        "results": len(resp.results),
                        "backend": self.store.backend,
                    }
                )
        self.metrics.observe_search(resp.timings_ms, resp.cache_hit, resp.degraded)
        return resp

    # ------------------------------------------------------------------ profiles

    async def put_profile(self, req: PutProfileRequest) -> ProfileOut:
        """New version of a profile; with ``require_eval``, only if it passes the gate."""
        check = evaluations.gate_check(self, req.name, req.require_eval) if req.require_eval else None
        return await self.profiles.put(req.name, req.settings, req.expected_version, req.note, check)

    async def evaluate(self, req: EvaluationRequest) -> Comparison:
        return await evaluations.evaluate(self, req)

    # ------------------------------------------------------------------ documents

    async def ingest(self, req: IngestRequest) -> IngestResponse:
        async with self.ingest_gate.enter():
            with tracer.start_as_current_span(
                "ingest", attributes={"namespace": req.namespace, "documents": len(req.documents)}
            ):
                resp = await ingest_pipeline.ingest(self, req)
        for r in resp.results:
            self.metrics.ingested.labels(r.status).inc()
            if r.status in ("created", "updated"):
                self.metrics.ingested_chunks.inc(r.chunks)
        return resp

    async def delete(self, req: DeleteRequest) -> DeleteResponse:
        return await ingest_pipeline.delete(self, req)

    async def get_document(self, req: DocumentRef) -> DocumentOut:
        records = await self.run_store(self.store.get_docs, req.namespace, [req.doc_id])
        rec = records.get(req.doc_id)
        if rec is None:
            raise NotFound(f"document {req.doc_id!r} not found in namespace {req.namespace!r}")
        return DocumentOut(
            id=rec["doc_id"],
            title=rec.get("title"),
            text=rec["text"],
            metadata=rec.get("metadata") or {},
            chunks=rec["chunks"],
            content_hash=rec["content_hash"],
            updated_at=rec["updated_at"],
        )

    async def count(self, req: CountRequest) -> CountResponse:
        docs = await self.run_store(self.store.count, req.namespace, "doc", req.filter)
        chunks = await self.run_store(self.store.count, req.namespace, "chunk", req.filter)
        version = await self.run_store(self.store.get_index_version, req.namespace)
        return CountResponse(documents=docs, chunks=chunks, index_version=version)

    async def readiness(self) -> dict[str, str]:
        """Each component's state; the service is ready when the store answers."""
        state = {
            "model": "ok",
            "store": "ok",
            "cache": "ok",
            "reranker": "ok" if self.reranker else "not_configured",
        }
        try:
            await self.run_store(self.store.ping)
        except Exception as exc:
            state["store"] = f"down: {exc}"
        try:
            await self.cache.ping()
        except CacheUnavailable as exc:
            state["cache"] = f"down: {exc}"
        for component in ("model", "store", "cache"):
            self.metrics.up.labels(component).set(1 if state[component] == "ok" else 0)
        return state
