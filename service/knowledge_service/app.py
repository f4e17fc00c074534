"""The composition root: builds the models, the stores and every pipeline, starts their upkeep,
and closes them. It holds no retrieval logic; the front doors call the pipelines it exposes."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from knowledge_service.core.batching import MicroBatcher
from knowledge_service.core.config import Settings
from knowledge_service.core.threads import Worker, cores
from knowledge_service.models.base import DenseModel, RerankModel, model_slug
from knowledge_service.models.chunker import Chunker
from knowledge_service.models.registry import Options, load_dense, load_reranker, load_sparse
from knowledge_service.ops.admission import Gate
from knowledge_service.ops.auth import KeyRing
from knowledge_service.ops.metrics import Metrics
from knowledge_service.pipelines.documents.documents import Documents
from knowledge_service.pipelines.documents.ingest import Ingester
from knowledge_service.pipelines.documents.settle import drain
from knowledge_service.pipelines.documents.sweeper import Sweeper
from knowledge_service.pipelines.documents.writes import Writes
from knowledge_service.pipelines.evaluation.evaluations import EVALUATION_QUEUE_WAIT_S, Evaluations
from knowledge_service.pipelines.health import Health
from knowledge_service.pipelines.parsing.limits import ParseLimits
from knowledge_service.pipelines.parsing.pool import ParserPool
from knowledge_service.pipelines.profiles.profiles import Profiles
from knowledge_service.pipelines.profiles.registry import ProfileRegistry
from knowledge_service.pipelines.search.rerank import RerankStage
from knowledge_service.pipelines.search.searcher import Searcher
from knowledge_service.storage import MetaStore, Store, open_meta_store, open_store
from knowledge_service.storage.cache import DecodedAnswers, ResultCache, open_cache
from knowledge_service.storage.runner import AsyncMeta, AsyncStore, StoreRunner

log = logging.getLogger(__name__)

MAINTAIN_EVERY_S = 5.0


def index_params(settings: Settings, dense: DenseModel) -> list[object]:
    """What a document's points are made from besides its content: changing any of these
    re-indexes a document on its next ingest."""
    s = settings
    return [
        dense.spec,
        dense.vectors,
        s.chunk_tokens,
        s.chunk_overlap,
        s.bm25_k,
        s.bm25_b,
        s.bm25_avg_len,
        s.bm25_language,
    ]


class Knowledge:
    """Every component of one replica, wired; one per process (or per simulated replica in tests)."""

    def __init__(
        self,
        settings: Settings,
        dense: DenseModel,
        reranker: RerankModel | None,
        stores: tuple[Store, MetaStore],
        cache: ResultCache,
        *,
        owns_store: bool = True,
    ) -> None:
        s = settings
        self.settings = s
        self.stores = stores  # shared with another replica in this process by Knowledge.open(stores=)
        self._owns_store = owns_store
        self.cache = cache
        self.dense = dense
        self.reranker = reranker
        self.runner = StoreRunner(s.store_workers)  # every store call goes through it
        self.store = AsyncStore(stores[0], self.runner, max_batch=s.query_batch_max)
        self._meta = AsyncMeta(stores[1], self.runner)
        # Concurrent queries share forward passes, except where a vector would depend on its
        # batch-mates (dynamic int8): those are encoded alone, side by side to fill the cores.
        parallel = s.query_encode_parallel or (1 if dense.batch_invariant else cores())
        self._query_worker = Worker("query-model", threads=parallel)
        self._rerank_worker = Worker("rerank-model")
        self.queries: MicroBatcher[str, list[float]] = MicroBatcher(
            lambda texts: self._query_worker.run(dense.encode, texts),
            max_batch=s.query_batch_max if dense.batch_invariant else 1,
            window_ms=s.query_batch_window_ms,
            parallel=parallel,
        )
        self._ingest_worker = Worker("ingest-model")
        self.keys = KeyRing.from_settings(s)
        self.metrics = Metrics()
        gates = (
            Gate("search", s.max_concurrent_searches, s.queue_wait_s, s.retry_after_s),
            Gate("ingest", s.max_concurrent_ingests, s.queue_wait_s, s.retry_after_s),
            # evaluations and require_eval checks; a busy replica answers 429 at once
            Gate("evaluation", s.max_concurrent_evaluations, EVALUATION_QUEUE_WAIT_S, s.retry_after_s),
        )
        for gate in gates:
            self.metrics.watch_gate(gate)
        search_gate, ingest_gate, evaluation_gate = gates
        self.registry = ProfileRegistry(self._meta, poll_s=s.profile_poll_s, redis_url=s.redis_url)
        self.sparse = sparse = load_sparse(s)
        self.searcher = Searcher(
            profiles=self.registry,
            store=self.store,
            cache=cache,
            queries=self.queries,
            sparse=sparse,
            rerank=RerankStage(reranker, self._rerank_worker, s.rerank_budget_ms),
            gate=search_gate,
            metrics=self.metrics,
            models_key=[
                dense.spec,
                dense.vectors,
                *([reranker.spec, reranker.backend] if reranker else [None]),
            ],
            cache_max_entry_bytes=s.cache_max_entry_bytes,
            decoded=DecodedAnswers(s.cache_decoded_entries, s.cache_ttl_s),
        )
        self.writes = writes = Writes(self.store)
        self.chunker = Chunker(dense.tokenizer(), s.chunk_tokens, s.chunk_overlap)
        ingester = Ingester(
            store=self.store,
            writes=writes,
            chunker=self.chunker,
            dense=dense,
            sparse=sparse,
            worker=self._ingest_worker,
            index_params=index_params(s, dense),
            marker_refresh_s=s.sweep_grace_s / 4,
        )
        self.evaluations = Evaluations(
            searcher=self.searcher,
            profiles=self.registry,
            gate=evaluation_gate,
            datasets_dir=s.eval_datasets_dir,
        )
        self.profiles = Profiles(self.registry, self.evaluations)
        limits = ParseLimits(
            max_pages=s.parse_max_pages, timeout_s=s.parse_timeout_s, memory_mb=s.parse_memory_mb
        )
        self.parsers = ParserPool(s.parse_workers, limits)  # its workers start on first use
        self.documents = Documents(
            store=self.store,
            writes=writes,
            ingester=ingester,
            gate=ingest_gate,
            metrics=self.metrics,
            parsers=self.parsers,
        )
        self.sweeper = Sweeper(
            self.store,
            self.metrics,
            interval_s=s.sweep_interval_s,
            scan_interval_s=s.sweep_scan_interval_s,
            grace_s=s.sweep_grace_s,
        )
        self.health = Health(self.store, cache, self.metrics, reranker=reranker is not None)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        dense: DenseModel | None = None,
        stores: tuple[Store, MetaStore] | None = None,
    ) -> Knowledge:
        """Load models (or reuse ``dense``), open the store and the cache, start upkeep.

        ``stores`` shares an already open store (and its meta store) with another replica in this
        process, as replicas share a Qdrant server; the replica that opened them closes them.
        """
        if dense is None:
            dense = await asyncio.to_thread(
                load_dense, settings.embed_model, backend=settings.embed_backend, options=Options.of(settings)
            )
        reranker = None
        if settings.rerank_model:
            reranker = await asyncio.to_thread(
                load_reranker,
                settings.rerank_model,
                backend=settings.rerank_backend,
                options=Options.of(settings),
            )
        owns = stores is None
        if stores is None:
            store = await asyncio.to_thread(open_store, settings, dim=dense.dim, model=model_slug(dense.spec))
            stores = (store, await asyncio.to_thread(open_meta_store, settings, store))
        knowledge = cls(settings, dense, reranker, stores, open_cache(settings), owns_store=owns)
        await knowledge.registry.start()
        knowledge._tasks.append(asyncio.create_task(knowledge._maintain_forever()))
        if settings.sweep_interval_s > 0:
            knowledge._tasks.append(asyncio.create_task(knowledge.sweeper.run_forever()))
        return knowledge

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await drain(self.settings.grpc_grace_s)  # writes cancelled at shutdown finish settling first
        await self.parsers.close()
        await self.registry.stop()
        await self.cache.close()
        if self._owns_store:
            await self._meta.close()
            await self.store.close()
        self.runner.close()
        self._query_worker.close()
        self._rerank_worker.close()
        self._ingest_worker.close()

    async def _maintain_forever(self) -> None:
        """Index upkeep the embedded store does not do by itself (optimisation after ingest)."""
        while True:
            await asyncio.sleep(MAINTAIN_EVERY_S)
            try:
                await self.store.maintain()
            except Exception:
                log.exception("store maintenance failed")
