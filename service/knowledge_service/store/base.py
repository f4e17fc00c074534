"""The storage interface and the point layout both backends share.

One collection (Edge: one shard) per embedding model holds three kinds of points, told apart by
the ``kind`` payload field and partitioned by ``namespace`` (a tenant index):

- ``chunk``: a searchable passage with a dense and a BM25 sparse vector;
- ``doc``: the document record (no vectors): content hash, text, metadata and the *live
  generation* (a random number, unique per write). Chunks of any other generation are invisible,
  which is how a re-ingest swaps a document's chunks in one step;
- ``ns``: the namespace record holding its index version.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from ..filters import Filter

_IDS = uuid.UUID("6f1c1f0e-52f4-4d0a-9d59-2b7a3c1e8a11")

DENSE = "dense"
SPARSE = "bm25"


def doc_point_id(namespace: str, doc_id: str) -> str:
    return str(uuid.uuid5(_IDS, f"doc\x00{namespace}\x00{doc_id}"))


def ns_point_id(namespace: str) -> str:
    return str(uuid.uuid5(_IDS, f"ns\x00{namespace}"))


def chunk_point_id(namespace: str, doc_id: str, generation: int, index: int) -> str:
    return str(uuid.uuid5(_IDS, f"chunk\x00{namespace}\x00{doc_id}\x00{generation}\x00{index}"))


@dataclass(frozen=True)
class ChunkPoint:
    id: str
    dense: list[float]
    sparse_indices: list[int]
    sparse_values: list[float]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class QueryPlan:
    """One engine-side query: a single leg, or both legs prefetched and fused."""

    namespace: str
    mode: Literal["hybrid", "dense", "sparse"]
    limit: int
    candidates: int
    dense: list[float] | None = None
    sparse_indices: list[int] = field(default_factory=list)
    sparse_values: list[float] = field(default_factory=list)
    fusion: Literal["rrf", "dbsf"] = "rrf"
    rrf_k: int = 60
    weights: list[float] | None = None
    filter: Filter | None = None


class Store(ABC):
    """What the core needs from a vector store. Methods block; the core calls them off the loop."""

    backend: str

    @abstractmethod
    def query(self, plan: QueryPlan) -> list[Hit]:
        """Chunks of ``plan.namespace`` matching ``plan.filter``, best first."""

    @abstractmethod
    def upsert_chunks(self, points: list[ChunkPoint]) -> None: ...

    @abstractmethod
    def get_docs(self, namespace: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Document records by id (missing ids are absent from the result)."""

    @abstractmethod
    def swap_doc(self, record: dict[str, Any], expected_generation: int | None) -> None:
        """Write a document record only if the stored one still names ``expected_generation``
        (None: only if there is none). Atomic in the engine, so concurrent writers cannot both win;
        read the record back to learn who did."""

    @abstractmethod
    def delete_docs(self, namespace: str, doc_ids: list[str]) -> None:
        """Remove document records (their chunks become invisible at once)."""

    @abstractmethod
    def delete_chunks(self, namespace: str, doc_id: str, generation: int | None) -> None:
        """Remove a document's chunks of one generation (None: of every generation)."""

    @abstractmethod
    def find_doc_ids(self, namespace: str, flt: Filter | None, limit: int) -> list[str]:
        """Ids of documents whose metadata matches ``flt``."""

    @abstractmethod
    def count(self, namespace: str, kind: str, flt: Filter | None = None) -> int: ...

    @abstractmethod
    def get_index_version(self, namespace: str) -> int: ...

    @abstractmethod
    def set_index_version(self, namespace: str, version: int) -> None: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot serve."""

    def maintain(self) -> bool:
        """Background upkeep (index optimisation) when due; returns whether it ran."""
        return False

    def close(self) -> None:
        return None


class FilterDialect(ABC):
    """Builds one backend's filter objects; ``translate`` walks the canonical filter with it."""

    @abstractmethod
    def eq(self, key: str, value: Any) -> Any: ...

    @abstractmethod
    def any(self, key: str, values: list[Any]) -> Any: ...

    @abstractmethod
    def range(self, key: str, bounds: dict[str, float]) -> Any: ...

    @abstractmethod
    def group(self, must: list[Any] = (), should: list[Any] = (), must_not: list[Any] = ()) -> Any:
        """A nested filter; empty lists are omitted."""

    def translate(self, flt: Filter) -> Any:
        """The canonical metadata filter (see filters.py) as this backend's filter."""
        if "and" in flt:
            return self.group(must=[self.translate(f) for f in flt["and"]])
        if "or" in flt:
            return self.group(should=[self.translate(f) for f in flt["or"]])
        if "not" in flt:
            return self.group(must_not=[self.translate(flt["not"])])
        key = f"metadata.{flt['field']}"
        if "eq" in flt:
            return self.eq(key, flt["eq"])
        if "any" in flt:
            return self.any(key, flt["any"])
        return self.range(key, flt["range"])

    def scope(self, namespace: str, kind: str, flt: Filter | None = None) -> Any:
        """Points of one kind in one namespace, optionally narrowed by a metadata filter."""
        must = [self.eq("namespace", namespace), self.eq("kind", kind)]
        if flt:
            must.append(self.translate(flt))
        return self.group(must=must)
