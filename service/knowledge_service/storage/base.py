"""The storage interface and the point layout both backends share.

One collection (Edge: one shard) per embedding model holds four kinds of points, told apart by
the ``kind`` payload field and partitioned by ``namespace`` (a tenant index):

- ``chunk``: a searchable passage with a dense and a BM25 sparse vector, tagged with the
  *generation* of the write that made it;
- ``doc``: the document record (no vectors): content hash, text, metadata and the *live
  generation* (a random number, unique per write). Chunks of any other generation are invisible,
  which is how a re-ingest swaps a document's chunks in one step;
- ``gc``: a cleanup marker, written before a write that may leave chunks of a generation behind
  (the generation being written, ``role="new"``, and the one it replaces, ``role="old"``). The
  write removes its markers when it has settled; a marker still there later names chunks the
  sweeper (or a retry) may have to remove;
- ``ns``: the namespace record holding its index version.

Every method that changes state and must not race with another replica is a compare-and-set in
the engine (a conditional upsert or delete), never a read-then-write in Python. Backends implement
a handful of primitives (``_retrieve``, ``_upsert``, ``_delete``, ``_scroll``, ``_count``,
``query``, ``upsert_chunks``); everything else is written once, here.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, Literal

from knowledge_service.core.errors import Unavailable
from knowledge_service.schemas.filters import Filter
from knowledge_service.storage.dialect import FilterDialect
from knowledge_service.storage.points import ChunkPoint, Hit, Marker, QueryPlan, doc_point_id, ns_point_id

UpsertMode = Literal["upsert", "insert", "update"]
CAS_ATTEMPTS = 50


class Store(ABC):
    """What the core needs from a vector store. Methods block; the core calls them off the loop."""

    backend: str
    f: FilterDialect

    # ------------------------------------------------------------------ backend primitives

    @abstractmethod
    def query(self, plan: QueryPlan) -> list[Hit]:
        """Chunks of ``plan.namespace`` matching ``plan.filter``, best first."""

    def query_many(self, plans: list[QueryPlan]) -> list[list[Hit]]:
        """Several queries at once (a backend with a batch query overrides this)."""
        return [self.query(p) for p in plans]

    @abstractmethod
    def upsert_chunks(self, points: list[ChunkPoint]) -> None: ...

    @abstractmethod
    def _retrieve(self, ids: list[str]) -> list[dict[str, Any]]:
        """Payloads of the points that exist among ``ids``."""

    @abstractmethod
    def _upsert(
        self, points: list[tuple[str, dict[str, Any]]], *, mode: UpsertMode = "upsert", condition: Any = None
    ) -> None:
        """Write vector-less points (id, payload); ``condition`` must hold on the stored point."""

    @abstractmethod
    def _delete(self, flt: Any) -> None:
        """Delete every point matching a backend filter."""

    @abstractmethod
    def _scroll(
        self, flt: Any, limit: int, offset: Any, fields: list[str] | bool
    ) -> tuple[list[dict[str, Any]], Any]:
        """One page of payloads matching ``flt`` in point-id order, and the next page's offset."""

    @abstractmethod
    def _count(self, flt: Any) -> int: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot serve."""

    def maintain(self) -> bool:
        """Background upkeep (index optimisation) when due; returns whether it ran."""
        return False

    def close(self) -> None:
        return None

    # ------------------------------------------------------------------ documents

    def get_docs(self, namespace: str, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Document records by id (missing ids are absent from the result)."""
        ids = [doc_point_id(namespace, d) for d in dict.fromkeys(doc_ids)]
        return {p["doc_id"]: p for p in self._retrieve(ids) if p.get("kind") == "doc"} if ids else {}

    def live_generations(self, namespace: str, doc_ids: list[str]) -> dict[str, int]:
        """Each existing document's live generation (what a search checks its chunks against)."""
        return {d: int(r["generation"]) for d, r in self.get_docs(namespace, doc_ids).items()}

    def peek_generations(self, namespace: str, doc_ids: list[str]) -> dict[str, int] | None:
        """``live_generations`` if the store knows them without I/O (a store one process owns),
        else None."""
        return None

    def swap_doc(self, record: dict[str, Any], expected_generation: int | None) -> None:
        """Write a document record only if the stored one still names ``expected_generation``
        (None: only if there is none). Atomic in the engine, so concurrent writers cannot both win;
        read the record back to learn who did."""
        point = (doc_point_id(record["namespace"], record["doc_id"]), record)
        if expected_generation is None:
            self._upsert([point], mode="insert")
        else:
            condition = self.f.group(must=[self._generation_is(expected_generation)])
            self._upsert([point], mode="update", condition=condition)

    def delete_docs_if(self, namespace: str, expected: dict[str, int]) -> None:
        """Remove the records that still name the generation given for them, in one operation."""
        if not expected:
            return
        self._delete(
            self.f.group(
                must=[self.f.eq("namespace", namespace), self.f.eq("kind", "doc")],
                should=[
                    self.f.group(must=[self.f.has_id([doc_point_id(namespace, d)]), self._generation_is(g)])
                    for d, g in expected.items()
                ],
            )
        )

    def find_docs(
        self, namespace: str, flt: Filter | None, limit: int, offset: Any = None
    ) -> tuple[list[dict[str, Any]], Any]:
        """A page of records (doc_id, generation) matching ``flt``, and the next page's offset."""
        return self._scroll(self.f.scope(namespace, "doc", flt), limit, offset, ["doc_id", "generation"])

    def count(self, namespace: str, kind: str, flt: Filter | None = None) -> int:
        """Points of one kind (chunks: of every generation, live or not)."""
        return self._count(self.f.scope(namespace, kind, flt))

    def count_live_chunks(self, namespace: str, flt: Filter | None = None, page: int = 10_000) -> int:
        """Chunks of live generations only: the sum of the matching records' chunk counts."""
        total, offset = 0, None
        while True:
            records, offset = self._scroll(self.f.scope(namespace, "doc", flt), page, offset, ["chunks"])
            total += sum(int(r.get("chunks", 0)) for r in records)
            if offset is None:
                return total

    # ------------------------------------------------------------------ chunks of generations

    def delete_generations(self, namespace: str, generations: Iterable[int]) -> None:
        """Remove every chunk of these generations, in one filtered delete."""
        if gens := sorted(set(generations)):
            self._delete(self._chunks_of(namespace, gens))

    def count_generations(self, namespace: str, generations: Iterable[int]) -> int:
        gens = sorted(set(generations))
        return self._count(self._chunks_of(namespace, gens)) if gens else 0

    def scan_chunks(self, limit: int, offset: Any = None) -> tuple[list[dict[str, Any]], Any]:
        """A page of every namespace's chunks (namespace, doc_id, generation, written_at)."""
        fields = ["namespace", "doc_id", "generation", "written_at"]
        return self._scroll(self.f.group(must=[self.f.eq("kind", "chunk")]), limit, offset, fields)

    # ------------------------------------------------------------------ cleanup markers

    def put_markers(self, markers: Iterable[Marker]) -> None:
        points = [(m.point_id, {"kind": "gc", **asdict(m)}) for m in markers]
        if points:
            self._upsert(points)

    def delete_markers(self, markers: Iterable[Marker]) -> None:
        if ids := [m.point_id for m in markers]:
            self._delete(self.f.group(must=[self.f.has_id(ids), self.f.eq("kind", "gc")]))

    def get_markers(self, namespace: str, doc_ids: Iterable[str]) -> list[Marker]:
        """Every marker left for these documents."""
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return []
        flt = self.f.scope(namespace, "gc", None, self.f.any("doc_id", ids))
        return self._markers(flt)

    def all_markers(self, limit: int) -> list[Marker]:
        """Up to ``limit`` markers of any namespace."""
        return self._markers(self.f.group(must=[self.f.eq("kind", "gc")]), limit)

    def _markers(self, flt: Any, limit: int | None = None) -> list[Marker]:
        out: list[Marker] = []
        offset = None
        while True:
            page, offset = self._scroll(flt, min(limit or 1_000, 1_000), offset, True)
            out += [Marker(**{k: p[k] for k in Marker.__dataclass_fields__}) for p in page]
            if offset is None or (limit is not None and len(out) >= limit):
                return out[:limit]

    # ------------------------------------------------------------------ index versions

    def get_index_version(self, namespace: str) -> int:
        records = self._retrieve([ns_point_id(namespace)])
        return int(records[0]["index_version"]) if records else 0

    def peek_index_version(self, namespace: str) -> int | None:
        """``get_index_version`` if the store knows it without I/O, else None."""
        return None

    def bump_index_version(self, namespace: str) -> int:
        """Move the namespace's index version strictly forward with a compare-and-set; return it.

        The new version is also at least the wall clock in microseconds, so versions stay unique
        across a store that is wiped and re-created while a shared cache keeps older entries.
        """
        point_id = ns_point_id(namespace)
        for _ in range(CAS_ATTEMPTS):
            stored = self._retrieve([point_id])
            old = int(stored[0]["index_version"]) if stored else None
            new = max((old or 0) + 1, time.time_ns() // 1000)
            token = uuid.uuid4().hex
            point = (point_id, {"kind": "ns", "namespace": namespace, "index_version": new, "writer": token})
            if old is None:
                self._upsert([point], mode="insert")
            else:
                condition = self.f.group(must=[self.f.eq("index_version", old)])
                self._upsert([point], mode="update", condition=condition)
            after = self._retrieve([point_id])
            if after and after[0].get("writer") == token:
                return new
        raise Unavailable(f"could not advance the index version of {namespace!r}: too much contention")

    # ------------------------------------------------------------------ helpers

    def _generation_is(self, generation: int) -> Any:
        return self.f.eq("generation", generation)

    def _chunks_of(self, namespace: str, generations: list[int]) -> Any:
        return self.f.scope(namespace, "chunk", None, self.f.any("generation", generations))
