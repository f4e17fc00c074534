"""Translation between knowledge.v1 protobuf messages and the request/response models.

Struct values are JSON numbers (doubles), so integral numbers in metadata and filters come back as
``int`` (``2020.0`` -> ``2020``); integers beyond 2**53 lose precision on the wire.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_service.schemas.documents import IngestRequest, IngestResponse
from knowledge_service.schemas.profiles import ProfileOut
from knowledge_service.schemas.search import RetrievalSettings, SearchRequest, SearchResponse


def plain(value: Any) -> Any:
    """Struct numbers are floats: turn integral ones back into ints, recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return plain(json_format.MessageToDict(struct))


def to_struct(data: dict[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if data:
        struct.update(data)
    return struct


def enum_str(enum: Any, prefix: str, value: int) -> str | int | None:
    """``SEARCH_MODE_DENSE`` -> ``"dense"``; UNSPECIFIED -> None; unknown numbers pass through."""
    if value not in enum.values():
        return value  # the model rejects it with a message naming the field
    name = enum.Name(value).removeprefix(prefix).lower()
    return None if name == "unspecified" else name


def enum_value(enum: Any, prefix: str, value: str) -> int:
    return enum.Value(f"{prefix}{value.upper()}")


def optional(msg: Any, data: dict[str, Any], *names: str) -> dict[str, Any]:
    """Copy the proto3 ``optional`` fields that are set, so unset ones take the model defaults."""
    for name in names:
        if msg.HasField(name):
            data[name] = getattr(msg, name)
    return data


def with_filter(msg: Any, data: dict[str, Any]) -> dict[str, Any]:
    if msg.HasField("filter"):
        data["filter"] = to_dict(msg.filter)
    return data


def _settings_fields(msg: Any, data: dict[str, Any], *names: str) -> dict[str, Any]:
    """The retrieval-settings fields set on ``msg`` (a SearchRequest or a RetrievalSettings)."""
    optional(msg, data, *names)
    if (mode := enum_str(pb.SearchMode, "SEARCH_MODE_", msg.mode)) is not None:
        data["mode"] = mode
    if msg.HasField("fusion"):
        fusion = optional(msg.fusion, {}, "k")
        if (method := enum_str(pb.FusionMethod, "FUSION_METHOD_", msg.fusion.method)) is not None:
            fusion["method"] = method
        if msg.fusion.weights:
            fusion["weights"] = list(msg.fusion.weights)
        data["fusion"] = fusion
    return data


def search_request(msg: pb.SearchRequest) -> SearchRequest:
    data = {"namespace": msg.namespace, "query": msg.query, "explain": msg.explain}
    _settings_fields(msg, data, "top_k", "candidates", "rerank", "profile")
    if msg.HasField("overrides"):
        data["overrides"] = to_dict(msg.overrides)
    return SearchRequest.model_validate(with_filter(msg, data))


def settings_dict(msg: pb.RetrievalSettings) -> dict[str, Any]:
    """A RetrievalSettings message as the fields it sets (unset ones take the defaults)."""
    return _settings_fields(
        msg, {}, "top_k", "candidates", "rerank", "rerank_depth", "score_threshold", "stitch"
    )


def settings_message(settings: RetrievalSettings) -> pb.RetrievalSettings:
    data = settings.model_dump(exclude_none=True, exclude={"mode", "fusion"})
    fusion = settings.fusion
    return pb.RetrievalSettings(
        **data,
        mode=enum_value(pb.SearchMode, "SEARCH_MODE_", settings.mode),
        fusion=pb.Fusion(
            method=enum_value(pb.FusionMethod, "FUSION_METHOD_", fusion.method),
            k=fusion.k,
            weights=fusion.weights or [],
        ),
    )


def profile_message(profile: ProfileOut) -> pb.Profile:
    return pb.Profile(
        name=profile.name,
        version=profile.version,
        settings=settings_message(profile.settings),
        created_at=profile.created_at,
        note=profile.note,
    )


def ingest_request(msg: pb.IngestRequest) -> IngestRequest:
    documents = []
    for doc in msg.documents:
        raw = optional(doc, {"id": doc.id, "text": doc.text}, "title")
        if doc.HasField("metadata"):
            raw["metadata"] = to_dict(doc.metadata)
        documents.append(raw)
    return IngestRequest.model_validate({"namespace": msg.namespace, "documents": documents})


def ingest_response(resp: IngestResponse) -> pb.IngestResponse:
    return pb.IngestResponse(
        results=[
            pb.IngestResult(
                id=r.id,
                status=enum_value(pb.IngestStatus, "INGEST_STATUS_", r.status),
                chunks=r.chunks,
                error=r.error,
            )
            for r in resp.results
        ],
        index_version=resp.index_version,
    )


def search_response(resp: SearchResponse) -> pb.SearchResponse:
    hits = [
        pb.SearchHit(
            doc_id=h.doc_id,
            chunk_id=h.chunk_id,
            text=h.text,
            score=h.score,
            title=h.title,
            metadata=to_struct(h.metadata),
            scores=pb.StageScores(**h.scores.model_dump(exclude_none=True)),
        )
        for h in resp.results
    ]
    return pb.SearchResponse(
        results=hits,
        cache_hit=resp.cache_hit,
        degraded=resp.degraded,
        rerank=enum_value(pb.RerankStatus, "RERANK_STATUS_", resp.rerank),
        index_version=resp.index_version,
        timings_ms=resp.timings_ms,
        profile=resp.profile,
        profile_version=resp.profile_version,
    )
