"""Request bodies shared by the sync and async clients (the HTTP API's JSON shapes)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ._exceptions import InvalidRequest
from ._models import Document, Fusion, RequireEval, RetrievalSettings

Body = dict[str, Any]
DocumentLike = Document | Mapping[str, Any]

# Which RPCs are retried on a transient failure. Ingest is idempotent by the service's content
# hash (re-ingesting the same content is "unchanged") and deletion by id or filter converges, so a
# retry of either cannot do harm; a retried call may report "unchanged" or deleted=0 for work
# an earlier attempt did. IngestStream is never retried: its batches cannot be replayed.
# PutProfile and RollbackProfile each write a new version, so they are never retried either.
IDEMPOTENT = {
    "Search": True,
    "GetDocument": True,
    "CountDocuments": True,
    "Ingest": True,
    "DeleteDocuments": True,
    "IngestStream": False,
    "ListProfiles": True,
    "GetProfile": True,
    "ListProfileVersions": True,
    "PutProfile": False,
    "RollbackProfile": False,
    "GetNamespaceSettings": True,
    "SetNamespaceSettings": True,
}

SettingsLike = RetrievalSettings | Mapping[str, Any]
M = TypeVar("M", bound=BaseModel)


def _model(cls: type[M], value: M | Mapping[str, Any], field: str) -> M:
    if isinstance(value, cls):
        return value
    try:
        return cls.model_validate(dict(value))
    except (ValidationError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"{field}: {exc}", field=field) from None


def search_body(
    namespace: str,
    query: str,
    *,
    top_k: int | None,
    filter: Mapping[str, Any] | None,
    mode: str | None,
    fusion: Fusion | Mapping[str, Any] | None,
    candidates: int | None,
    rerank: bool | None,
    explain: bool,
    profile: str | None,
    overrides: SettingsLike | None,
) -> Body:
    body: Body = {"namespace": namespace, "query": query, "explain": explain}
    optional = {
        "top_k": top_k,
        "filter": filter,
        "mode": mode,
        "candidates": candidates,
        "rerank": rerank,
        "profile": profile,
        "overrides": None if overrides is None else settings(overrides),
    }
    body.update({k: (dict(v) if isinstance(v, Mapping) else v) for k, v in optional.items() if v is not None})
    if fusion is not None:
        body["fusion"] = _model(Fusion, fusion, "fusion").model_dump(exclude_none=True)
    return body


def document(doc: DocumentLike) -> Body:
    if isinstance(doc, Document):
        return doc.model_dump(exclude_none=True)
    if isinstance(doc, Mapping):
        return dict(doc)
    raise InvalidRequest(
        f"documents: each must be a Document or a mapping (got {type(doc).__name__})", field="documents"
    )


def ingest_body(namespace: str, documents: Iterable[DocumentLike]) -> Body:
    if isinstance(documents, (str, bytes, Mapping, Document)):
        raise InvalidRequest("documents: give a list of documents", field="documents")
    return {"namespace": namespace, "documents": [document(d) for d in documents]}


def delete_body(namespace: str, ids: Iterable[str], filter: Mapping[str, Any] | None) -> Body:
    if isinstance(ids, str):
        ids = [ids]
    body: Body = {"namespace": namespace, "ids": list(ids)}
    if filter is not None:
        body["filter"] = dict(filter)
    return body


def count_body(namespace: str, filter: Mapping[str, Any] | None) -> Body:
    return {"namespace": namespace, **({"filter": dict(filter)} if filter is not None else {})}


def settings(value: SettingsLike) -> Body:
    """Retrieval settings as the fields they set (a mapping passes through, for newer fields)."""
    if isinstance(value, RetrievalSettings):
        return value.model_dump(exclude_none=True)
    if isinstance(value, Mapping):
        return {
            k: (v.model_dump(exclude_none=True) if isinstance(v, Fusion) else v) for k, v in value.items()
        }
    raise InvalidRequest(
        f"settings: give RetrievalSettings or a mapping (got {type(value).__name__})", field="settings"
    )


def put_profile_body(
    name: str,
    new_settings: SettingsLike | None,
    expected_version: int | None,
    require_eval: RequireEval | Mapping[str, Any] | None,
    note: str | None,
) -> Body:
    body: Body = {"name": name, "settings": settings(new_settings or {})}
    if expected_version is not None:
        body["expected_version"] = expected_version
    if require_eval is not None:
        body["require_eval"] = _model(RequireEval, require_eval, "require_eval").model_dump()
    if note is not None:
        body["note"] = note
    return body
