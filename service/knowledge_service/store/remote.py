"""A Qdrant server or cluster through qdrant-client (production and scale-out).

``KNOWLEDGE_QDRANT_URL=:memory:`` selects qdrant-client's local mode, which speaks the same API
but searches by brute force in Python: for tests of this code path, never for serving.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from qdrant_client import QdrantClient
from qdrant_client import models as m

from ..config import Settings
from ..errors import KnowledgeError, Unavailable
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
T = TypeVar("T")


def _unavailable_on_failure(fn: Callable[..., T]) -> Callable[..., T]:
    """Any failure talking to Qdrant becomes Unavailable (503), with the cause logged."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except KnowledgeError:
            raise
        except Exception as exc:
            log.warning("qdrant %s failed: %r", fn.__name__, exc)
            raise Unavailable(f"vector store unavailable ({type(exc).__name__}); retry later") from exc

    return wrapper


class ClientDialect(FilterDialect):
    def eq(self, key: str, value: Any) -> Any:
        return m.FieldCondition(key=key, match=m.MatchValue(value=value))

    def any(self, key: str, values: list[Any]) -> Any:
        return m.FieldCondition(key=key, match=m.MatchAny(any=values))

    def range(self, key: str, bounds: dict[str, float]) -> Any:
        return m.FieldCondition(key=key, range=m.Range(**bounds))

    def group(self, must=(), should=(), must_not=()) -> Any:  # type: ignore[no-untyped-def]
        return m.Filter(must=list(must) or None, should=list(should) or None, must_not=list(must_not) or None)


class RemoteStore(Store):
    backend = "qdrant"

    def __init__(self, settings: Settings, *, dim: int, model: str) -> None:
        url = settings.qdrant_url or ""
        if url == ":memory:":
            self.client = QdrantClient(location=":memory:")
        else:
            self.client = QdrantClient(url=url, api_key=settings.qdrant_api_key, timeout=10)
        self.collection = f"{settings.qdrant_collection_prefix}_{model}_{dim}"
        self._f = ClientDialect()
        self._ensure_collection(dim)

    @_unavailable_on_failure
    def _ensure_collection(self, dim: int) -> None:
        if self.client.collection_exists(self.collection):
            return
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: m.VectorParams(size=dim, distance=m.Distance.COSINE)},
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
        )
        self.client.create_payload_index(
            self.collection, "namespace", m.KeywordIndexParams(type="keyword", is_tenant=True)
        )
        for name in ("kind", "doc_id"):
            self.client.create_payload_index(self.collection, name, m.PayloadSchemaType.KEYWORD)

    @_unavailable_on_failure
    def query(self, plan: QueryPlan) -> list[Hit]:
        scope = self._f.scope(plan.namespace, "chunk", plan.filter)
        idf = m.SearchParams(idf=m.IdfCorpusParams(corpus=self._f.scope(plan.namespace, "chunk")))
        sparse = m.SparseVector(indices=plan.sparse_indices, values=plan.sparse_values)
        common: dict[str, Any] = {"limit": plan.limit, "with_payload": True}
        if plan.mode == "dense":
            res = self.client.query_points(
                self.collection, query=plan.dense, using=DENSE, query_filter=scope, **common
            )
        elif plan.mode == "sparse":
            res = self.client.query_points(
                self.collection,
                query=sparse,
                using=SPARSE,
                query_filter=scope,
                search_params=idf,
                **common,
            )
        else:
            fusion: Any = (
                m.FusionQuery(fusion=m.Fusion.DBSF)
                if plan.fusion == "dbsf"
                else m.RrfQuery(rrf=m.Rrf(k=plan.rrf_k, weights=plan.weights))
            )
            res = self.client.query_points(
                self.collection,
                prefetch=[
                    m.Prefetch(query=plan.dense, using=DENSE, filter=scope, limit=plan.candidates),
                    m.Prefetch(query=sparse, using=SPARSE, filter=scope, params=idf, limit=plan.candidates),
                ],
                query=fusion,
                **common,
            )
        return [Hit(str(p.id), p.score, p.payload or {}) for p in res.points]

    @_unavailable_on_failure
    def get_docs(self, namespace: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        ids = [doc_point_id(namespace, d) for d in dict.fromkeys(doc_ids)]
        records = self.client.retrieve(self.collection, ids, with_payload=True, with_vectors=False)
        return {r.payload["doc_id"]: r.payload for r in records if r.payload}

    @_unavailable_on_failure
    def find_doc_ids(self, namespace: str, flt: Filter | None, limit: int) -> list[str]:
        records, _ = self.client.scroll(
            self.collection,
            scroll_filter=self._f.scope(namespace, "doc", flt),
            limit=limit,
            with_payload=["doc_id"],
            with_vectors=False,
        )
        return [r.payload["doc_id"] for r in records if r.payload]

    @_unavailable_on_failure
    def count(self, namespace: str, kind: str, flt: Filter | None = None) -> int:
        return self.client.count(
            self.collection, count_filter=self._f.scope(namespace, kind, flt), exact=True
        ).count

    @_unavailable_on_failure
    def get_index_version(self, namespace: str) -> int:
        # Read through every time: other replicas may have bumped it.
        records = self.client.retrieve(
            self.collection, [ns_point_id(namespace)], with_payload=True, with_vectors=False
        )
        return int(records[0].payload["index_version"]) if records and records[0].payload else 0

    @_unavailable_on_failure
    def ping(self) -> None:
        self.client.get_collection(self.collection)

    @_unavailable_on_failure
    def upsert_chunks(self, points: list[ChunkPoint]) -> None:
        self.client.upsert(
            self.collection,
            [
                m.PointStruct(
                    id=p.id,
                    vector={
                        DENSE: p.dense,
                        SPARSE: m.SparseVector(indices=p.sparse_indices, values=p.sparse_values),
                    },
                    payload=p.payload,
                )
                for p in points
            ],
            wait=True,
        )

    @_unavailable_on_failure
    def swap_doc(self, record: dict[str, Any], expected_generation: int | None) -> None:
        point = m.PointStruct(
            id=doc_point_id(record["namespace"], record["doc_id"]), vector={}, payload=record
        )
        if expected_generation is None:
            self.client.upsert(self.collection, [point], update_mode=m.UpdateMode.INSERT_ONLY, wait=True)
        else:
            self.client.upsert(
                self.collection,
                [point],
                update_filter=self._f.group(must=[self._f.eq("generation", expected_generation)]),
                update_mode=m.UpdateMode.UPDATE_ONLY,
                wait=True,
            )

    @_unavailable_on_failure
    def delete_docs(self, namespace: str, doc_ids: list[str]) -> None:
        self.client.delete(
            self.collection,
            m.PointIdsList(points=[doc_point_id(namespace, d) for d in doc_ids]),
            wait=True,
        )

    @_unavailable_on_failure
    def delete_chunks(self, namespace: str, doc_id: str, generation: int | None) -> None:
        must = [self._f.eq("namespace", namespace), self._f.eq("kind", "chunk"), self._f.eq("doc_id", doc_id)]
        if generation is not None:
            must.append(self._f.eq("generation", generation))
        self.client.delete(self.collection, m.FilterSelector(filter=self._f.group(must=must)), wait=True)

    @_unavailable_on_failure
    def set_index_version(self, namespace: str, version: int) -> None:
        payload = {"kind": "ns", "namespace": namespace, "index_version": version}
        self.client.upsert(
            self.collection,
            [m.PointStruct(id=ns_point_id(namespace), vector={}, payload=payload)],
            wait=True,
        )

    def close(self) -> None:
        self.client.close()
