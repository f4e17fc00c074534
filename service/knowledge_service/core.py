"""The retrieval core both front doors call: search, ingest, delete, get and count.

It owns the models, the store, the cache and the thread pools; the pipelines live in
``search.py`` and ``ingest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from . import delete as delete_pipeline
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
from .parse_pool import ParserPool
from .parsing import ParsedFile, ParseLimits
from .profiles import ProfileOut, ProfileRegistry
from .settle import drain, shielded
from .store import MetaStore, Store, open_meta_store, open_store
from .sweeper import Sweeper
from .tracing import tracer

log = logging.getLogger(__name__)
T = TypeVar("T")

MAINTAIN_EVERY_S = 5.0


@dataclass
class IndexVersion:
    value: int = 0


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
        for gate in (self.search_gate, self.ingest_gate, self.evaluation_gate):
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
        self._tasks: list[asyncio.Task[None]] = []
        self._parsers: ParserPool | None = None
        self.sweeper = Sweeper(self)
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
        core._tasks.append(asyncio.create_task(core._maintain_forever()))
        if settings.sweep_interval_s > 0:
            core._tasks.append(asyncio.create_task(core.sweeper.run_forever()))
        return core

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await drain(self.settings.grpc_grace_s)  # writes cancelled at shutdown finish settling first
        if self._parsers is not None:
            await self._parsers.close()
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
        """Run a blocking store call in the store pool.

        A store call cannot be stopped once its thread runs it, so when the caller is cancelled
        this waits for the call to end before passing the cancellation on: whatever cleanup runs
        next sees its effect (a write never lands after the cleanup that should remove it).
        """
        future = asyncio.get_running_loop().run_in_executor(self._store_pool, fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await future
            raise

    async def run_query_model(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._query_pool, fn, *args)

    async def run_ingest_model(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._ingest_pool, fn, *args)

    def namespace_lock(self, namespace: str) -> asyncio.Lock:
        return self._ns_locks.setdefault(namespace, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def index_write(self, namespace: str) -> AsyncIterator[IndexVersion]:
        """Bracket a write with index version bumps: one before it starts, one after it ends
        (however it ends). No cache entry made before the write is reachable once it began, and
        none made while it ran (which may show it half done) is reachable once it ended."""
        await self.run_store(self.store.bump_index_version, namespace)
        version = IndexVersion()
        try:
            yield version
        finally:
            version.value = await shielded(self.run_store(self.store.bump_index_version, namespace))

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
        return await delete_pipeline.delete(self, req)

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
        """Documents, and chunks of their live generations (never leftovers of failed writes)."""
        docs = await self.run_store(self.store.count, req.namespace, "doc", req.filter)
        chunks = await self.run_store(self.store.count_live_chunks, req.namespace, req.filter)
        version = await self.run_store(self.store.get_index_version, req.namespace)
        return CountResponse(documents=docs, chunks=chunks, index_version=version)

    async def parse_file(
        self, filename: str, data: bytes, content_type: str | None, *, field: str = "file"
    ) -> ParsedFile:
        """Parse one uploaded file in a worker process, within the parse limits (parse_pool.py)."""
        if self._parsers is None:  # started on first use: most replicas never parse a file
            s = self.settings
            limits = ParseLimits(
                max_pages=s.parse_max_pages, timeout_s=s.parse_timeout_s, memory_mb=s.parse_memory_mb
            )
            self._parsers = ParserPool(s.parse_workers, limits)
        return await self._parsers.parse(filename, data, content_type, field=field)

    async def readiness(self) -> dict[str, str]:
        """Each component's state as one word (``ok``, ``down``, ``not_configured``), never an error
        text, host or port (those go to the log); the service is ready when the store answers."""
        state = {
            "model": "ok",
            "store": "ok",
            "cache": "ok",
            "reranker": "ok" if self.reranker else "not_configured",
        }
        try:
            await self.run_store(self.store.ping)
        except Exception as exc:
            log.warning("readiness: store down: %r", exc)
            state["store"] = "down"
        try:
            await self.cache.ping()
        except CacheUnavailable as exc:
            log.warning("readiness: cache down: %s", exc)
            state["cache"] = "down"
        for component in ("model", "store", "cache"):
            self.metrics.up.labels(component).set(1 if state[component] == "ok" else 0)
        return state
