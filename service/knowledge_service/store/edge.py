"""Qdrant Edge: the real Qdrant engine in-process, on disk under ``data_dir`` (embedded default).

Edge facts this module is built around (see the README): one open shard per directory, so one
process owns the store; queries hold the GIL; there is no background optimiser, so the service
calls ``maintain()`` when writes have gone quiet, and optimisation blocks the process while it
runs (it, too, holds the GIL).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import qdrant_edge as qe

from ..config import Settings
from ..errors import StoreBusy
from ..filters import Filter
from .base import (
    DENSE,
    SPARSE,
    ChunkPoint,
    FilterDialect,
    Hit,
    QueryPlan,
    Store,
    doc_point_id,
    ns_point_id,
)

log = logging.getLogger(__name__)
_KEYWORD_FIELDS = ("kind", "doc_id")


class EdgeDialect(FilterDialect):
    def eq(self, key: str, value: Any) -> Any:
        return qe.FieldCondition(key, match=qe.MatchValue(value))

    def any(self, key: str, values: list[Any]) -> Any:
        return qe.FieldCondition(key, match=qe.MatchAny(values))

    def range(self, key: str, bounds: dict[str, float]) -> Any:
        return qe.FieldCondition(key, range=qe.RangeFloat(**bounds))

    def group(self, must=(), should=(), must_not=()) -> Any:  # type: ignore[no-untyped-def]
        return qe.Filter(
            must=list(must) or None, should=list(should) or None, must_not=list(must_not) or None
        )


class EdgeStore(Store):
    backend = "edge"

    def __init__(self, settings: Settings, *, dim: int, model: str) -> None:
        self.path = settings.edge_path / f"{settings.qdrant_collection_prefix}_{model}_{dim}"
        self._f = EdgeDialect()
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._idle_s = settings.optimize_idle_s
        self._min_points = settings.optimize_min_points
        self._unoptimised = 0
        self._last_write = 0.0
        self.shard = self._open(dim)

    def _open(self, dim: int) -> qe.EdgeShard:
        try:
            if self.path.exists() and any(self.path.iterdir()):
                return qe.EdgeShard.load(str(self.path))
            config = qe.EdgeConfig(
                vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
                sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            )
            self.path.mkdir(parents=True, exist_ok=True)
            shard = qe.EdgeShard.create(str(self.path), config)
        except Exception as exc:
            if "WouldBlock" in str(exc) or "lock" in str(exc).lower():
                raise StoreBusy(
                    f"the store at {self.path} is open in another process (a running service?); "
                    "stop it or talk to it instead"
                ) from exc
            raise
        shard.update(
            qe.UpdateOperation.create_field_index("namespace", qe.KeywordIndexParams(is_tenant=True))
        )
        for name in _KEYWORD_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, qe.KeywordIndexParams()))
        return shard

    # ------------------------------------------------------------------ queries

    def query(self, plan: QueryPlan) -> list[Hit]:
        scope = self._f.scope(plan.namespace, "chunk", plan.filter)
        idf = qe.SearchParams(idf=qe.IdfParams(corpus=self._f.scope(plan.namespace, "chunk")))
        dense = qe.Query.Nearest(plan.dense, using=DENSE) if plan.dense is not None else None
        sparse = qe.Query.Nearest(qe.SparseVector(plan.sparse_indices, plan.sparse_values), using=SPARSE)
        if plan.mode == "dense":
            req = qe.QueryRequest(limit=plan.limit, query=dense, filter=scope, with_payload=True)
        elif plan.mode == "sparse":
            req = qe.QueryRequest(limit=plan.limit, query=sparse, filter=scope, params=idf, with_payload=True)
        else:
            fusion = qe.Fusion.Dbsf() if plan.fusion == "dbsf" else qe.Fusion.Rrf(plan.rrf_k, plan.weights)
            req = qe.QueryRequest(
                limit=plan.limit,
                prefetches=[
                    qe.Prefetch(limit=plan.candidates, query=dense, filter=scope),
                    qe.Prefetch(limit=plan.candidates, query=sparse, filter=scope, params=idf),
                ],
                query=fusion,
                with_payload=True,
            )
        return [Hit(str(p.id), p.score, p.payload or {}) for p in self.shard.query(req)]

    def get_docs(self, namespace: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        ids = [doc_point_id(namespace, d) for d in dict.fromkeys(doc_ids)]
        records = self.shard.retrieve(ids, with_payload=True, with_vector=False)
        return {r.payload["doc_id"]: r.payload for r in records if r.payload}

    def find_doc_ids(self, namespace: str, flt: Filter | None, limit: int) -> list[str]:
        records, _ = self.shard.scroll(
            qe.ScrollRequest(
                filter=self._f.scope(namespace, "doc", flt),
                limit=limit,
                with_payload=["doc_id"],
                with_vector=False,
            )
        )
        return [r.payload["doc_id"] for r in records if r.payload]

    def count(self, namespace: str, kind: str, flt: Filter | None = None) -> int:
        return self.shard.count(qe.CountRequest(filter=self._f.scope(namespace, kind, flt), exact=True))

    def get_index_version(self, namespace: str) -> int:
        # This process owns the shard, so the in-memory copy is authoritative once read.
        if namespace not in self._versions:
            records = self.shard.retrieve([ns_point_id(namespace)], with_payload=True, with_vector=False)
            self._versions[namespace] = int(records[0].payload["index_version"]) if records else 0
        return self._versions[namespace]

    def ping(self) -> None:
        self.shard.info()

    # ------------------------------------------------------------------ writes

    def upsert_chunks(self, points: list[ChunkPoint]) -> None:
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
        )

    def swap_doc(self, record: dict[str, Any], expected_generation: int | None) -> None:
        point = qe.Point(doc_point_id(record["namespace"], record["doc_id"]), {}, record)
        if expected_generation is None:
            op = qe.UpdateOperation.upsert_points([point], update_mode=qe.UpdateMode.InsertOnly)
        else:
            op = qe.UpdateOperation.upsert_points(
                [point],
                condition=self._f.group(must=[self._f.eq("generation", expected_generation)]),
                update_mode=qe.UpdateMode.UpdateOnly,
            )
        self._update(op)

    def delete_docs(self, namespace: str, doc_ids: list[str]) -> None:
        self._update(qe.UpdateOperation.delete_points([doc_point_id(namespace, d) for d in doc_ids]))

    def delete_chunks(self, namespace: str, doc_id: str, generation: int | None) -> None:
        must = [self._f.eq("namespace", namespace), self._f.eq("kind", "chunk"), self._f.eq("doc_id", doc_id)]
        if generation is not None:
            must.append(self._f.eq("generation", generation))
        self._update(qe.UpdateOperation.delete_points_by_filter(self._f.group(must=must)))

    def set_index_version(self, namespace: str, version: int) -> None:
        payload = {"kind": "ns", "namespace": namespace, "index_version": version}
        self._update(qe.UpdateOperation.upsert_points([qe.Point(ns_point_id(namespace), {}, payload)]))
        self._versions[namespace] = version

    def _update(self, op: qe.UpdateOperation, points: int = 0) -> None:
        self.shard.update(op)
        with self._lock:
            self._unoptimised += points
            self._last_write = time.monotonic()

    # ------------------------------------------------------------------ upkeep

    def maintain(self) -> bool:
        with self._lock:
            due = (
                self._idle_s > 0
                and self._unoptimised >= max(self._min_points, 1)
                and time.monotonic() - self._last_write >= self._idle_s
            )
            if not due:
                return False
            self._unoptimised = 0
        started = time.monotonic()
        changed = self.shard.optimize()
        log.info("edge optimise took %.1fs (changed=%s)", time.monotonic() - started, changed)
        return True

    def close(self) -> None:
        self.shard.flush()
        self.shard.close()
