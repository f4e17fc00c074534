"""Every call, built once for both clients: what to send, whether to retry it, how to read the answer.

Each public method of :class:`~knowledge_client.KnowledgeClient` and of
:class:`~knowledge_client.AsyncKnowledgeClient` is one line: it builds a :class:`Call` here and
hands it to its flavour's executor (``_run``: blocking, or awaited), which applies the deadline and
the retry policy. Bodies are the HTTP API's JSON shapes (``namespace`` and the other path
parameters included), which both transports take.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ._exceptions import InvalidRequest, KnowledgeError
from ._models import (
    CountResponse,
    DeleteResponse,
    Document,
    Fusion,
    IngestResponse,
    NamespaceSettings,
    Profile,
    RequireEval,
    RetrievalSettings,
    SearchResponse,
    StoredDocument,
)

Body = dict[str, Any]
DocumentLike = Document | Mapping[str, Any]
SettingsLike = RetrievalSettings | Mapping[str, Any]
Batches = AsyncIterable[Iterable[DocumentLike]] | Iterable[Iterable[DocumentLike]]
M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")

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


@dataclass(frozen=True)
class Call(Generic[R]):
    """One RPC, ready to run.

    Attributes:
        method: The RPC's name in ``knowledge.v1.KnowledgeService`` (``"Search"``).
        body: The request body; for a stream (``IngestStream``), an iterable or async iterable of
            bodies, read lazily.
        read: Turns the response body into the typed result.
        stream: Sent with the transport's ``stream`` rather than ``call``.
    """

    method: str
    body: Any
    read: Callable[[Body], R]
    stream: bool = False

    @property
    def idempotent(self) -> bool:
        return IDEMPOTENT[self.method]

    def result(self, data: Body) -> R:
        """The typed result; an answer the models cannot read is a :class:`KnowledgeError`."""
        try:
            return self.read(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise KnowledgeError(f"{self.method}: malformed response ({where}: {first['msg']})") from None


def _items(model: type[M], key: str) -> Callable[[Body], list[M]]:
    def read(data: Body) -> list[M]:
        return [model.model_validate(item) for item in data.get(key, [])]

    return read


# ----------------------------------------------------------------------------- bodies


def _input(cls: type[M], value: M | Mapping[str, Any], field: str) -> M:
    if isinstance(value, cls):
        return value
    try:
        return cls.model_validate(dict(value))
    except (ValidationError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"{field}: {exc}", field=field) from None


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


def _with_filter(body: Body, filter: Mapping[str, Any] | None) -> Body:
    return body if filter is None else {**body, "filter": dict(filter)}


# ----------------------------------------------------------------------------- documents


def search(
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
) -> Call[SearchResponse]:
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
        body["fusion"] = _input(Fusion, fusion, "fusion").model_dump(exclude_none=True)
    return Call("Search", body, SearchResponse.model_validate)


def ingest(namespace: str, documents: Iterable[DocumentLike]) -> Call[IngestResponse]:
    return Call("Ingest", ingest_body(namespace, documents), IngestResponse.model_validate)


async def _async_bodies(
    namespace: str, batches: AsyncIterable[Iterable[DocumentLike]]
) -> AsyncIterator[Body]:
    async for batch in batches:
        yield ingest_body(namespace, batch)


def ingest_stream(namespace: str, batches: Batches) -> Call[IngestResponse]:
    """Batches become bodies lazily, as the transport sends them (a generator may feed a corpus)."""
    if isinstance(batches, AsyncIterable):
        bodies: Any = _async_bodies(namespace, batches)
    else:
        bodies = (ingest_body(namespace, batch) for batch in batches)
    return Call("IngestStream", bodies, IngestResponse.model_validate, stream=True)


def delete(namespace: str, ids: Iterable[str], filter: Mapping[str, Any] | None) -> Call[DeleteResponse]:
    if isinstance(ids, str):
        ids = [ids]
    body = _with_filter({"namespace": namespace, "ids": list(ids)}, filter)
    return Call("DeleteDocuments", body, DeleteResponse.model_validate)


def get(namespace: str, doc_id: str) -> Call[StoredDocument]:
    return Call("GetDocument", {"namespace": namespace, "doc_id": doc_id}, StoredDocument.model_validate)


def count(namespace: str, filter: Mapping[str, Any] | None) -> Call[CountResponse]:
    body = _with_filter({"namespace": namespace}, filter)
    return Call("CountDocuments", body, CountResponse.model_validate)


# ----------------------------------------------------------------------------- profiles


def list_profiles() -> Call[list[Profile]]:
    return Call("ListProfiles", {}, _items(Profile, "profiles"))


def get_profile(name: str) -> Call[Profile]:
    return Call("GetProfile", {"name": name}, Profile.model_validate)


def put_profile(
    name: str,
    new_settings: SettingsLike | None,
    expected_version: int | None,
    require_eval: RequireEval | Mapping[str, Any] | None,
    note: str | None,
) -> Call[Profile]:
    body: Body = {"name": name, "settings": settings(new_settings or {})}
    if expected_version is not None:
        body["expected_version"] = expected_version
    if require_eval is not None:
        body["require_eval"] = _input(RequireEval, require_eval, "require_eval").model_dump()
    if note is not None:
        body["note"] = note
    return Call("PutProfile", body, Profile.model_validate)


def profile_versions(name: str) -> Call[list[Profile]]:
    return Call("ListProfileVersions", {"name": name}, _items(Profile, "versions"))


def rollback_profile(name: str, version: int) -> Call[Profile]:
    return Call("RollbackProfile", {"name": name, "version": version}, Profile.model_validate)


def get_namespace_settings(namespace: str) -> Call[NamespaceSettings]:
    return Call("GetNamespaceSettings", {"namespace": namespace}, NamespaceSettings.model_validate)


def set_namespace_settings(namespace: str, default_profile: str) -> Call[NamespaceSettings]:
    body = {"namespace": namespace, "default_profile": default_profile}
    return Call("SetNamespaceSettings", body, NamespaceSettings.model_validate)
