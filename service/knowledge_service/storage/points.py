"""The point layout both storage backends share: point ids, chunks, markers, hits, query plans."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from knowledge_service.schemas.filters import Filter

_IDS = uuid.UUID("6f1c1f0e-52f4-4d0a-9d59-2b7a3c1e8a11")


DENSE = "dense"


SPARSE = "bm25"


@functools.lru_cache(maxsize=16_384)  # a search reads the live generation of each document it found
def doc_point_id(namespace: str, doc_id: str) -> str:
    return str(uuid.uuid5(_IDS, f"doc\x00{namespace}\x00{doc_id}"))


@functools.lru_cache(maxsize=4096)  # read by every search (the namespace's index version)
def ns_point_id(namespace: str) -> str:
    return str(uuid.uuid5(_IDS, f"ns\x00{namespace}"))


def chunk_point_id(namespace: str, doc_id: str, generation: int, index: int) -> str:
    return str(uuid.uuid5(_IDS, f"chunk\x00{namespace}\x00{doc_id}\x00{generation}\x00{index}"))


def marker_point_id(namespace: str, doc_id: str, generation: int) -> str:
    return str(uuid.uuid5(_IDS, f"gc\x00{namespace}\x00{doc_id}\x00{generation}"))


@dataclass(frozen=True)
class ChunkPoint:
    id: str
    dense: list[float]
    sparse_indices: list[int]
    sparse_values: list[float]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Marker:
    """Chunks of ``generation`` may have to go once it is not the document's live generation."""

    namespace: str
    doc_id: str
    generation: int
    role: Literal["new", "old"]  # old: was live when written, so once replaced it never returns
    created_at: float = field(default_factory=time.time)

    @property
    def point_id(self) -> str:
        return marker_point_id(self.namespace, self.doc_id, self.generation)


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
