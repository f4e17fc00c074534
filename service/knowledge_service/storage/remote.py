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

from knowledge_service.core.config import Settings
from knowledge_service.core.errors import KnowledgeError, Unavailable
from knowledge_service.storage.base import Store, UpsertMode
from knowledge_service.storage.dialect import FilterDialect
from knowledge_service.storage.points import DENSE, SPARSE, ChunkPoint, Hit, QueryPlan

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

    def has_id(self, ids: list[str]) -> Any:
        return m.HasIdCondition(has_id=ids)

    def group(self, must=(), should=(), must_not=()) -> Any:  # type: ignore[no-untyped-def]
        return m.Filter(must=list(must) or None, should=list(should) or None, must_not=list(must_not) or None)


_MODES = {"upsert": None, "insert": m.UpdateMode.INSERT_ONLY, "update": m.UpdateMode.UPDATE_ONLY}
_INDEXES: dict[str, m.KeywordIndexParams | m.PayloadSchemaType] = {
    "namespace": m.KeywordIndexParams(type="keyword", is_tenant=True),
    "kind": m.PayloadSchemaType.KEYWORD,
    "doc_id": m.PayloadSchemaType.KEYWORD,
    "generation": m.PayloadSchemaType.INTEGER,
}


class RemoteStore(Store):
    backend = "qdrant"

    def __init__(self, settings: Settings, *, dim: int, model: str) -> None:
        url = settings.qdrant_url or ""
        if url == ":memory:":
            self.client = QdrantClient(location=":memory:")
        else:
            self.client = QdrantClient(url=url, api_key=settings.qdrant_api_key, timeout=10)
        self.collection = f"{settings.qdrant_collection_prefix}_{model}_{dim}"
        self.f = ClientDialect()
        self._ensure_collection(dim)

    @_unavailable_on_failure
    def _ensure_collection(self, dim: int) -> None:
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config={DENSE: m.VectorParams(size=dim, distance=m.Distance.COSINE)},
                sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            )
        existing = self.client.get_collection(self.collection).payload_schema or {}
        for name, schema in _INDEXES.items():  # a collection made by an older version may lack some
            if name not in existing:
                self.client.create_payload_index(self.collection, name, schema)

    @_unavailable_on_failure
    def query(self, plan: QueryPlan) -> list[Hit]:
        scope = self.f.scope(plan.namespace, "chunk", plan.filter)
        idf = m.SearchParams(idf=m.IdfCorpusParams(corpus=self.f.scope(plan.namespace, "chunk")))
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

    # ------------------------------------------------------------------ primitives

    @_unavailable_on_failure
    def _retrieve(self, ids: list[str]) -> list[dict[str, Any]]:
        records = self.client.retrieve(self.collection, ids, with_payload=True, with_vectors=False)
        return [r.payload for r in records if r.payload]

    @_unavailable_on_failure
    def _upsert(
        self, points: list[tuple[str, dict[str, Any]]], *, mode: UpsertMode = "upsert", condition: Any = None
    ) -> None:
        self.client.upsert(
            self.collection,
            [m.PointStruct(id=point_id, vector={}, payload=payload) for point_id, payload in points],
            update_filter=condition,
            update_mode=_MODES[mode],
            wait=True,
        )

    @_unavailable_on_failure
    def _delete(self, flt: Any) -> None:
        self.client.delete(self.collection, m.FilterSelector(filter=flt), wait=True)

    @_unavailable_on_failure
    def _scroll(
        self, flt: Any, limit: int, offset: Any, fields: list[str] | bool
    ) -> tuple[list[dict[str, Any]], Any]:
        records, next_offset = self.client.scroll(
            self.collection,
            scroll_filter=flt,
            limit=limit,
            offset=offset,
            with_payload=fields,
            with_vectors=False,
        )
        return [r.payload for r in records if r.payload], next_offset

    @_unavailable_on_failure
    def _count(self, flt: Any) -> int:
        return self.client.count(self.collection, count_filter=flt, exact=True).count

    def close(self) -> None:
        self.client.close()
