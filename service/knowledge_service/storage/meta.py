"""Small durable records beside the documents (profiles and their versions, namespace settings).

They live in a collection (Edge: a shard) of their own in the same store as the documents, never
in the cache Redis, which may evict. Records are keyed by a string and carry a ``kind``.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from knowledge_service.storage.points import _IDS

_SCAN_PAGE = 1_000


def record_id(key: str) -> str:
    return str(uuid.uuid5(_IDS, f"meta\x00{key}"))


class MetaStore(ABC):
    @abstractmethod
    def get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Records by key (missing keys are absent)."""

    @abstractmethod
    def put(self, records: dict[str, dict[str, Any]]) -> None:
        """Write records (each replaces the whole record under its key)."""

    @abstractmethod
    def scan(self, kind: str) -> list[dict[str, Any]]:
        """Every record of one kind."""

    @abstractmethod
    def insert_new(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        """Write ``record`` unless ``key`` exists (atomically, in the engine); return what is stored."""

    @abstractmethod
    def put_newer(self, key: str, record: dict[str, Any], field: str) -> None:
        """Write ``record`` unless the stored one's ``field`` is already >= the new one's."""

    @abstractmethod
    def put_if(self, key: str, record: dict[str, Any], field: str, expected: Any) -> None:
        """Write ``record`` only if the stored one's ``field`` equals ``expected`` (None: only if
        there is no record); atomic in the engine. Read it back to learn whether it landed."""

    def close(self) -> None:
        return None


class EdgeMetaStore(MetaStore):
    def __init__(self, path: Path) -> None:
        if path.exists() and any(path.iterdir()):
            self.shard = qe.EdgeShard.load(str(path))
        else:
            path.mkdir(parents=True, exist_ok=True)
            # Edge needs some vector config; these records carry no vectors.
            config = qe.EdgeConfig(vectors={"none": qe.EdgeVectorParams(size=1, distance=qe.Distance.Dot)})
            self.shard = qe.EdgeShard.create(str(path), config)
            self.shard.update(qe.UpdateOperation.create_field_index("kind", qe.KeywordIndexParams()))

    def get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        records = self.shard.retrieve([record_id(k) for k in keys], with_payload=True, with_vector=False)
        return {r.payload["key"]: r.payload for r in records if r.payload}

    def put(self, records: dict[str, dict[str, Any]]) -> None:
        self.shard.update(
            qe.UpdateOperation.upsert_points(
                [qe.Point(record_id(k), {}, {**v, "key": k}) for k, v in records.items()]
            )
        )

    def insert_new(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        point = qe.Point(record_id(key), {}, {**record, "key": key})
        self.shard.update(qe.UpdateOperation.upsert_points([point], update_mode=qe.UpdateMode.InsertOnly))
        return self.get([key])[key]

    def put_newer(self, key: str, record: dict[str, Any], field: str) -> None:
        older = qe.Filter(must=[qe.FieldCondition(field, range=qe.RangeFloat(lt=record[field]))])
        point = qe.Point(record_id(key), {}, {**record, "key": key})
        self.shard.update(qe.UpdateOperation.upsert_points([point], condition=older))

    def put_if(self, key: str, record: dict[str, Any], field: str, expected: Any) -> None:
        point = qe.Point(record_id(key), {}, {**record, "key": key})
        if expected is None:
            op = qe.UpdateOperation.upsert_points([point], update_mode=qe.UpdateMode.InsertOnly)
        else:
            same = qe.Filter(must=[qe.FieldCondition(field, match=qe.MatchValue(expected))])
            op = qe.UpdateOperation.upsert_points(
                [point], condition=same, update_mode=qe.UpdateMode.UpdateOnly
            )
        self.shard.update(op)

    def scan(self, kind: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = None
        flt = qe.Filter(must=[qe.FieldCondition("kind", match=qe.MatchValue(kind))])
        while True:
            records, offset = self.shard.scroll(
                qe.ScrollRequest(
                    filter=flt, limit=_SCAN_PAGE, offset=offset, with_payload=True, with_vector=False
                )
            )
            out.extend(r.payload for r in records if r.payload)
            if offset is None:
                return out

    def close(self) -> None:
        self.shard.flush()
        self.shard.close()


class ClientMetaStore(MetaStore):
    def __init__(self, client: Any, collection: str) -> None:
        from qdrant_client import models as m

        self._m = m
        self.client = client
        self.collection = collection
        if not client.collection_exists(collection):
            client.create_collection(collection, vectors_config={})
            client.create_payload_index(collection, "kind", m.PayloadSchemaType.KEYWORD)

    def get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        records = self.client.retrieve(
            self.collection, [record_id(k) for k in keys], with_payload=True, with_vectors=False
        )
        return {r.payload["key"]: r.payload for r in records if r.payload}

    def put(self, records: dict[str, dict[str, Any]]) -> None:
        m = self._m
        self.client.upsert(
            self.collection,
            [m.PointStruct(id=record_id(k), vector={}, payload={**v, "key": k}) for k, v in records.items()],
            wait=True,
        )

    def insert_new(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        m = self._m
        point = m.PointStruct(id=record_id(key), vector={}, payload={**record, "key": key})
        self.client.upsert(self.collection, [point], update_mode=m.UpdateMode.INSERT_ONLY, wait=True)
        return self.get([key])[key]

    def put_newer(self, key: str, record: dict[str, Any], field: str) -> None:
        m = self._m
        older = m.Filter(must=[m.FieldCondition(key=field, range=m.Range(lt=record[field]))])
        point = m.PointStruct(id=record_id(key), vector={}, payload={**record, "key": key})
        self.client.upsert(self.collection, [point], update_filter=older, wait=True)

    def put_if(self, key: str, record: dict[str, Any], field: str, expected: Any) -> None:
        m = self._m
        point = m.PointStruct(id=record_id(key), vector={}, payload={**record, "key": key})
        if expected is None:
            self.client.upsert(self.collection, [point], update_mode=m.UpdateMode.INSERT_ONLY, wait=True)
        else:
            same = m.Filter(must=[m.FieldCondition(key=field, match=m.MatchValue(value=expected))])
            self.client.upsert(
                self.collection, [point], update_filter=same, update_mode=m.UpdateMode.UPDATE_ONLY, wait=True
            )

    def scan(self, kind: str) -> list[dict[str, Any]]:
        m = self._m
        out: list[dict[str, Any]] = []
        offset = None
        flt = m.Filter(must=[m.FieldCondition(key="kind", match=m.MatchValue(value=kind))])
        while True:
            records, offset = self.client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=_SCAN_PAGE,
                offset=offset,
                with_payload=True,
                with_vectors=False,
            )
            out.extend(r.payload for r in records if r.payload)
            if offset is None:
                return out
