"""Translate the transports' JSON-shaped bodies (the HTTP API's) to and from knowledge.v1 messages.

Both transports speak the same dicts, so the clients build requests and parse results once.
Struct numbers are doubles on the wire: integral ones come back as ``int`` (``2020.0`` -> ``2020``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import json_format, struct_pb2

from ._exceptions import InvalidRequest
from .proto.knowledge.v1 import knowledge_pb2 as pb

Body = dict[str, Any]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_struct(data: dict[str, Any], field: str) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    try:
        struct.update(data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidRequest(f"{field}: not JSON-like ({exc})", field=field) from None
    return struct


def to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return _plain(json_format.MessageToDict(struct))


def enum_name(enum: Any, prefix: str, value: int, default: str | None) -> str | None:
    """``SEARCH_MODE_DENSE`` -> ``"dense"``; UNSPECIFIED or unknown -> ``default``."""
    if value not in enum.values():
        return default
    name = enum.Name(value).removeprefix(prefix).lower()
    return default if name == "unspecified" else name


def enum_value(enum: Any, prefix: str, value: str, field: str) -> int:
    try:
        return int(enum.Value(f"{prefix}{str(value).upper()}"))
    except ValueError:
        names = [n.removeprefix(prefix).lower() for n in enum.keys() if not n.endswith("UNSPECIFIED")]
        raise InvalidRequest(f"{field}: must be one of {names} (got {value!r})", field=field) from None


def _document(doc: dict[str, Any]) -> pb.Document:
    msg = pb.Document(id=doc.get("id") or "", text=doc.get("text") or "")
    if doc.get("title") is not None:
        msg.title = doc["title"]
    if doc.get("metadata"):
        msg.metadata.CopyFrom(to_struct(doc["metadata"], "metadata"))
    return msg


def search_request(body: Body) -> pb.SearchRequest:
    msg = pb.SearchRequest(namespace=body["namespace"], query=body["query"])
    for name in ("top_k", "candidates", "rerank"):
        if body.get(name) is not None:
            setattr(msg, name, body[name])
    msg.explain = bool(body.get("explain", False))
    if body.get("profile") is not None:
        msg.profile = body["profile"]
    for name in ("filter", "overrides"):
        if body.get(name) is not None:
            getattr(msg, name).CopyFrom(to_struct(body[name], name))
    return settings_fields(body, msg)


def settings_fields(body: Body, msg: Any) -> Any:
    """Copy ``mode`` and ``fusion`` onto a SearchRequest or RetrievalSettings message."""
    if body.get("mode") is not None:
        msg.mode = enum_value(pb.SearchMode, "SEARCH_MODE_", body["mode"], "mode")
    if (fusion := body.get("fusion")) is not None:
        msg.fusion.method = enum_value(
            pb.FusionMethod, "FUSION_METHOD_", fusion.get("method") or "rrf", "fusion.method"
        )
        if fusion.get("k") is not None:
            msg.fusion.k = fusion["k"]
        msg.fusion.weights.extend(fusion.get("weights") or [])
    return msg


def ingest_request(body: Body) -> pb.IngestRequest:
    return pb.IngestRequest(namespace=body["namespace"], documents=[_document(d) for d in body["documents"]])


def delete_request(body: Body) -> pb.DeleteDocumentsRequest:
    msg = pb.DeleteDocumentsRequest(namespace=body["namespace"], ids=body.get("ids") or [])
    if body.get("filter") is not None:
        msg.filter.CopyFrom(to_struct(body["filter"], "filter"))
    return msg


def get_request(body: Body) -> pb.GetDocumentRequest:
    return pb.GetDocumentRequest(namespace=body["namespace"], doc_id=body["doc_id"])


def count_request(body: Body) -> pb.CountDocumentsRequest:
    msg = pb.CountDocumentsRequest(namespace=body["namespace"])
    if body.get("filter") is not None:
        msg.filter.CopyFrom(to_struct(body["filter"], "filter"))
    return msg


def search_response(msg: pb.SearchResponse) -> Body:
    hits = []
    for hit in msg.results:
        scores = {f.name: v for f, v in hit.scores.ListFields()}
        hits.append(
            {
                "doc_id": hit.doc_id,
                "chunk_id": hit.chunk_id,
                "text": hit.text,
                "score": hit.score,
                "title": hit.title if hit.HasField("title") else None,
                "metadata": to_dict(hit.metadata),
                "scores": scores,
            }
        )
    return {
        "results": hits,
        "cache_hit": msg.cache_hit,
        "degraded": list(msg.degraded),
        "rerank": enum_name(pb.RerankStatus, "RERANK_STATUS_", msg.rerank, "not_configured"),
        "index_version": msg.index_version,
        "timings_ms": dict(msg.timings_ms),
        "profile": msg.profile,
        "profile_version": msg.profile_version,
    }


def ingest_response(msg: pb.IngestResponse) -> Body:
    results = [
        {
            "id": r.id,
            "status": enum_name(pb.IngestStatus, "INGEST_STATUS_", r.status, "failed"),
            "chunks": r.chunks,
            "error": r.error if r.HasField("error") else None,
        }
        for r in msg.results
    ]
    return {"results": results, "index_version": msg.index_version}


def document_response(msg: pb.GetDocumentResponse) -> Body:
    return {
        "id": msg.id,
        "title": msg.title if msg.HasField("title") else None,
        "text": msg.text,
        "metadata": to_dict(msg.metadata),
        "chunks": msg.chunks,
        "content_hash": msg.content_hash,
        "updated_at": msg.updated_at,
    }


def fields_response(msg: Any) -> Body:
    """Plain scalar responses (delete, count): every field, defaults included."""
    return {f.name: getattr(msg, f.name) for f in msg.DESCRIPTOR.fields}


# RPC name -> (build the request message, read the response message); profiles: _convert_profiles
CODECS: dict[str, tuple[Callable[[Body], Any], Callable[[Any], Body]]] = {
    "Search": (search_request, search_response),
    "Ingest": (ingest_request, ingest_response),
    "IngestStream": (ingest_request, ingest_response),
    "DeleteDocuments": (delete_request, fields_response),
    "GetDocument": (get_request, document_response),
    "CountDocuments": (count_request, fields_response),
}
