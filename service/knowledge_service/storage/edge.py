"""Qdrant Edge: the real Qdrant engine in-process, on disk under ``data_dir`` (embedded default).

Edge facts this module is built around (see the README): one open shard per directory, so one
process owns the store; queries hold the GIL; there is no background optimiser, so the service
calls ``maintain()`` when writes have gone quiet. ``optimize()`` holds the GIL too, for minutes on
a large shard, so it runs on a copy in a child process and the copy is swapped in (``shadow``).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from knowledge_service.core.config import Settings
from knowledge_service.core.errors import StoreBusy
from knowledge_service.storage.base import Store, UpsertMode
from knowledge_service.storage.dialect import FilterDialect
from knowledge_service.storage.mirror import ABSENT, Mirror
from knowledge_service.storage.points import (
    DENSE,
    SPARSE,
    ChunkPoint,
    Hit,
    QueryPlan,
    doc_point_id,
    ns_point_id,
)
from knowledge_service.storage.shadow import LiveShard
from knowledge_service.storage.shards import DiskRoom, ShardHome

log = logging.getLogger(__name__)
_INDEXES: dict[str, qe.KeywordIndexParams | qe.IntegerIndexParams] = {
    "namespace": qe.KeywordIndexParams(is_tenant=True),
    "kind": qe.KeywordIndexParams(),
    "doc_id": qe.KeywordIndexParams(),
    "generation": qe.IntegerIndexParams(),
}


class EdgeDialect(FilterDialect):
    def eq(self, key: str, value: Any) -> Any:
        # Edge's binding reads a Python bool as an integer (True -> 1), so ``eq: true`` would match
        # the number 1 and never a stored true; numpy's bool is not an int and stays a boolean.
        match = qe.MatchValue(np.bool_(value) if isinstance(value, bool) else value)  # type: ignore[arg-type]
        return qe.FieldCondition(key, match=match)

    def any(self, key: str, values: list[Any]) -> Any:
        return qe.FieldCondition(key, match=qe.MatchAny(values))

    def range(self, key: str, bounds: dict[str, float]) -> Any:
        return qe.FieldCondition(key, range=qe.RangeFloat(**bounds))

    def has_id(self, ids: list[str]) -> Any:
        return qe.HasIdCondition(set(ids))

    def group(self, must=(), should=(), must_not=()) -> Any:  # type: ignore[no-untyped-def]
        return qe.Filter(
            must=list(must) or None, should=list(should) or None, must_not=list(must_not) or None
        )


MIRRORED_NAMESPACES = 10_000
MIRRORED_DOCS = 200_000  # about 100 bytes each
_MODES = {"upsert": None, "insert": qe.UpdateMode.InsertOnly, "update": qe.UpdateMode.UpdateOnly}


def _hits(points: list[Any]) -> list[Hit]:
    return [Hit(str(p.id), p.score, p.payload or {}) for p in points]


def _version(value: Any) -> int:
    return 0 if value is ABSENT else int(value)


def _generations(doc_ids: dict[str, str], values: dict[str, Any]) -> dict[str, int]:
    """Mirrored generations by point id -> by document id, for the documents that exist."""
    return {doc_ids[pid]: int(v) for pid, v in values.items() if v is not ABSENT}


class EdgeStore(Store):
    backend = "edge"

    def __init__(self, settings: Settings, *, dim: int, model: str) -> None:
        home = ShardHome(settings.edge_path, f"{settings.qdrant_collection_prefix}_{model}_{dim}")
        self.f = EdgeDialect()
        self._lock = threading.Lock()
        self._idle_s = settings.optimize_idle_s
        self._room = DiskRoom(settings.edge_path, settings.min_free_disk_mb)
        self._min_points = settings.optimize_min_points
        self._last_write = 0.0
        # what searches read on every call: index versions and documents' live generations
        self._versions = Mirror(MIRRORED_NAMESPACES)
        self._generations = Mirror(MIRRORED_DOCS)
        self._shard = LiveShard(home, self._open(home.current(), dim), self._room)
        self._unoptimised = self._unindexed()  # what an earlier process left to optimise
        self._chunk_namespaces = self._namespaces_with_chunks()

    @property
    def path(self) -> Path:
        return self._shard.path

    @property
    def shard(self) -> qe.EdgeShard:
        """The live shard (calls borrow it through ``self._shard.use()``)."""
        return self._shard.current

    @staticmethod
    def _open(path: Path, dim: int) -> qe.EdgeShard:
        try:
            if path.exists() and any(path.iterdir()):
                shard = qe.EdgeShard.load(str(path))
            else:
                config = qe.EdgeConfig(
                    vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
                    sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
                )
                path.mkdir(parents=True, exist_ok=True)
                shard = qe.EdgeShard.create(str(path), config)
        except Exception as exc:
            if "WouldBlock" in str(exc) or "lock" in str(exc).lower():
                raise StoreBusy(
                    f"the store at {path} is open in another process (a running service?); "
                    "stop it or talk to it instead"
                ) from exc
            raise
        existing = shard.info().payload_schema  # a store made by an older version may lack some
        for name, params in _INDEXES.items():
            if name not in existing:
                shard.update(qe.UpdateOperation.create_field_index(name, params))
        return shard

    # ------------------------------------------------------------------ queries

    def query(self, plan: QueryPlan) -> list[Hit]:
        request = self._request(plan)
        with self._shard.use() as shard:
            return _hits(shard.query(request))

    def query_many(self, plans: list[QueryPlan]) -> list[list[Hit]]:
        """One planned batch: the queries share a pass over the segments (``query_batch``)."""
        if len(plans) == 1:
            return [self.query(plans[0])]
        batch = qe.QueryBatchRequest([self._request(p) for p in plans])
        with self._shard.use() as shard:
            return [_hits(points) for points in shard.query_batch(batch)]

    def _request(self, plan: QueryPlan) -> qe.QueryRequest:
        f = self.f
        scope = f.scope(plan.namespace, "chunk", plan.filter)
        # IDF over the namespace's own chunks; when the shard holds no other namespace's chunks,
        # that corpus is every point with a sparse vector, which is the engine's own IDF: the
        # same numbers without the per-query count over a filter (most of a BM25 query's cost at
        # 100k chunks: 17 of 19.5 ms)
        shared = len(self._chunk_namespaces - {plan.namespace}) > 0
        idf = qe.SearchParams(idf=qe.IdfParams(corpus=f.scope(plan.namespace, "chunk"))) if shared else None
        dense = qe.Query.Nearest(plan.dense, using=DENSE) if plan.dense is not None else None
        sparse = qe.Query.Nearest(qe.SparseVector(plan.sparse_indices, plan.sparse_values), using=SPARSE)
        if plan.mode == "dense":
            return qe.QueryRequest(limit=plan.limit, query=dense, filter=scope, with_payload=True)
        if plan.mode == "sparse":
            return qe.QueryRequest(
                limit=plan.limit, query=sparse, filter=scope, params=idf, with_payload=True
            )
        fusion = qe.Fusion.Dbsf() if plan.fusion == "dbsf" else qe.Fusion.Rrf(plan.rrf_k, plan.weights)
        return qe.QueryRequest(
            limit=plan.limit,
            prefetches=[
                qe.Prefetch(limit=plan.candidates, query=dense, filter=scope),
                qe.Prefetch(limit=plan.candidates, query=sparse, filter=scope, params=idf),
            ],
            query=fusion,  # type: ignore[arg-type]  # the stubs leave Fusion's variants out
            with_payload=True,
        )

    def ping(self) -> None:
        with self._shard.use() as shard:
            shard.info()

    def _namespaces_with_chunks(self) -> set[str]:
        """Namespaces with chunks in the shard: two at most, which is all ``_request`` asks. Kept
        up to date by ``upsert_chunks``; deletes leave it as it is (one too many is still right)."""
        request = qe.FacetRequest(
            "namespace", limit=2, filter=self.f.group(must=[self.f.eq("kind", "chunk")])
        )
        with self._shard.use() as shard:
            return {str(hit.value) for hit in shard.facet(request).hits}

    # ------------------------------------------------------------------ mirrored reads

    def get_index_version(self, namespace: str) -> int:
        pid = ns_point_id(namespace)
        return _version(self._versions.read([pid], lambda ids: self._field(ids, "index_version"))[pid])

    def peek_index_version(self, namespace: str) -> int | None:
        pid = ns_point_id(namespace)
        known = self._versions.peek([pid])
        return None if known is None else _version(known[pid])

    def live_generations(self, namespace: str, doc_ids: list[str]) -> dict[str, int]:
        ids = {doc_point_id(namespace, d): d for d in doc_ids}
        values = self._generations.read(list(ids), lambda pids: self._field(pids, "generation", "doc"))
        return _generations(ids, values)

    def peek_generations(self, namespace: str, doc_ids: list[str]) -> dict[str, int] | None:
        ids = {doc_point_id(namespace, d): d for d in doc_ids}
        values = self._generations.peek(ids)
        return None if values is None else _generations(ids, values)

    def _field(self, ids: list[str], name: str, kind: str | None = None) -> dict[str, Any]:
        point_ids: list[Any] = list(ids)
        with self._shard.use() as shard:
            records = shard.retrieve(point_ids, with_payload=True, with_vector=False)
        return {
            str(r.id): r.payload[name]
            for r in records
            if r.payload and name in r.payload and (kind is None or r.payload.get("kind") == kind)
        }

    # ------------------------------------------------------------------ primitives

    def _retrieve(self, ids: list[str]) -> list[dict[str, Any]]:
        point_ids: list[Any] = list(ids)  # (the stubs' list type is invariant)
        with self._shard.use() as shard:
            records = shard.retrieve(point_ids, with_payload=True, with_vector=False)
        return [r.payload for r in records if r.payload]

    def _scroll(
        self, flt: Any, limit: int, offset: Any, fields: list[str] | bool
    ) -> tuple[list[dict[str, Any]], Any]:
        request = qe.ScrollRequest(
            filter=flt, limit=limit, offset=offset, with_payload=fields, with_vector=False
        )
        with self._shard.use() as shard:
            records, next_offset = shard.scroll(request)
        return [r.payload for r in records if r.payload], next_offset

    def _count(self, flt: Any) -> int:
        with self._shard.use() as shard:
            return shard.count(qe.CountRequest(filter=flt, exact=True))

    def upsert_chunks(self, points: list[ChunkPoint]) -> None:
        self._room.check()
        self._chunk_namespaces.update(p.payload["namespace"] for p in points)  # before they land
        self._update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(
                        p.id,
                        {DENSE: p.dense, SPARSE: qe.SparseVector(p.sparse_indices, p.sparse_values)},
                        p.payload,
                    )
                    for p in points
                ]
            ),
            len(points),
            touched=[],  # chunks: no mirrored record changes
        )

    def _upsert(
        self, points: list[tuple[str, dict[str, Any]]], *, mode: UpsertMode = "upsert", condition: Any = None
    ) -> None:
        batch = [qe.Point(point_id, {}, payload) for point_id, payload in points]
        op = qe.UpdateOperation.upsert_points(batch, condition=condition, update_mode=_MODES[mode])
        self._update(op, touched=[point_id for point_id, _ in points])

    def _delete(self, flt: Any) -> None:
        self._update(qe.UpdateOperation.delete_points_by_filter(flt), touched=None)

    def _update(self, op: qe.UpdateOperation, points: int = 0, touched: list[str] | None = None) -> None:
        """Apply a write; ``touched`` names the records it may change (None: any record)."""
        mirrors = (self._versions, self._generations) if touched != [] else ()
        for mirror in mirrors:
            mirror.invalidate(touched)
        try:
            self._shard.update(op, points)
        finally:
            for mirror in mirrors:
                mirror.invalidate(touched)
        with self._lock:
            self._unoptimised += points
            self._last_write = time.monotonic()

    # ------------------------------------------------------------------ upkeep

    def _unindexed(self) -> int:
        """Chunks whose dense vector is in no index yet (each chunk has a dense and a sparse
        vector, and a sparse vector is indexed as it lands). Segments too small for Edge to index
        (a few thousand chunks) stay in this count after optimisation; they are searched exactly."""
        chunks = self._count(self.f.group(must=[self.f.eq("kind", "chunk")]))
        return max(0, 2 * chunks - (self.shard.info().indexed_vectors_count or 0))

    def maintain(self) -> bool:
        """Optimise the index when writes have gone quiet and enough points are unindexed: on a
        copy, in a child process, then swapped in (see ``shadow``). Returns whether it swapped."""
        with self._lock:
            due = (
                self._idle_s > 0
                and self._unoptimised >= max(self._min_points, 1)
                and time.monotonic() - self._last_write >= self._idle_s
            )
            if not due:
                return False
            pending, self._unoptimised = self._unoptimised, 0
        swapped = False
        try:
            swapped = self._shard.optimise()
        finally:
            if not swapped:
                with self._lock:
                    self._unoptimised += pending  # not done: due again at the next quiet spell
        return swapped

    def close(self) -> None:
        self._shard.close()
