"""HTTP routes for search and documents (they mirror the gRPC RPCs one to one)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query, Request
from pydantic import BaseModel, Field

from knowledge_service.core import limits as L
from knowledge_service.core.errors import InvalidArgument
from knowledge_service.doors import calls
from knowledge_service.doors.http.routing import Routes
from knowledge_service.doors.http.state import knowledge_of
from knowledge_service.doors.http.uploads import Upload, read_form
from knowledge_service.schemas.common import parse
from knowledge_service.schemas.documents import (
    CountRequest,
    CountResponse,
    DeleteRequest,
    DeleteResponse,
    DocumentOut,
    DocumentRef,
    IngestFilesRequest,
    IngestRequest,
    IngestResponse,
)
from knowledge_service.schemas.search import SearchRequest, SearchResponse

NamespacePath = Annotated[str, Path(pattern=L.NAMESPACE_PATTERN, description="Knowledge base.")]
DocIdPath = Annotated[str, Path(min_length=1, max_length=L.MAX_DOC_ID_CHARS)]

# Bodies are the request models without `namespace`, which comes from the path.


class SearchBody(SearchRequest):
    namespace: str | None = None  # type: ignore[assignment]  # from the path


class DeleteBody(DeleteRequest):
    namespace: str | None = None  # type: ignore[assignment]  # from the path


FILES_FORM: dict[str, Any] = {  # the multipart form, for the OpenAPI page (parsed by uploads.py)
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Text, Markdown, HTML or PDF.",
                        },
                        "ids": {"type": "array", "items": {"type": "string"}, "description": "One per file."},
                        "metadata": {"type": "string", "description": "JSON object added to each."},
                    },
                }
            }
        },
    }
}


class IngestBody(BaseModel):
    documents: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=L.MAX_BATCH_DOCS,
        description="Each: {id, text, title?, metadata?}; one bad document fails alone.",
    )


routes = Routes()  # Search, ingest (JSON and files), get, delete and count.


@routes.route("POST", "/v1/namespaces/{namespace}/search", name="Search")
async def search(
    namespace: NamespacePath,
    body: SearchBody,
    request: Request,
    timeout_ms: Annotated[
        int | None, Header(alias="x-request-timeout-ms", ge=1, description="Deadline for this call.")
    ] = None,
) -> SearchResponse:
    """Hybrid search; results are chunks, best first. Stages that would overrun the deadline are cut."""
    deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
    calls.note(query=body.query)
    resp = await knowledge_of(request).searcher.search(
        body.model_copy(update={"namespace": namespace}), deadline
    )
    calls.note(profile=resp.profile)
    return resp


@routes.route("POST", "/v1/namespaces/{namespace}/documents", name="Ingest")
async def ingest(namespace: NamespacePath, body: IngestBody, request: Request) -> IngestResponse:
    """Ingest a batch of documents; each gets its own status."""
    return await knowledge_of(request).documents.ingest(
        parse(IngestRequest, namespace=namespace, documents=body.documents)
    )


@routes.route(
    "POST",
    "/v1/namespaces/{namespace}/files",
    name="IngestFiles",
    openapi_extra=FILES_FORM,
)
async def ingest_files(namespace: NamespacePath, request: Request) -> IngestResponse:
    """Ingest uploaded files (multipart ``files``, optional ``ids`` one per file and ``metadata``
    JSON); id, title and metadata come from each file unless given."""
    form = await read_form(request.headers.get("content-type"), request.stream())
    ids = form.fields.get("ids", [])
    if ids and len(ids) != len(form.files):
        raise InvalidArgument(f"ids: give one per file ({len(form.files)}), or none", field="ids")
    metadata = form.fields.get("metadata")
    files = [
        {
            "filename": u.filename,
            "content_type": u.content_type,
            "data": _take(u),
            "id": ids[i] if ids else None,
        }
        for i, u in enumerate(form.files)
    ]
    req = parse(
        IngestFilesRequest,
        namespace=namespace,
        files=files,
        metadata=_json_object(metadata[-1] if metadata else None, "metadata"),
    )
    del files  # the request holds each file's bytes now, until it is parsed
    return await knowledge_of(request).documents.ingest_files(req)


@routes.route("GET", "/v1/namespaces/{namespace}/documents/{doc_id:path}", name="GetDocument")
async def get_document(namespace: NamespacePath, doc_id: DocIdPath, request: Request) -> DocumentOut:
    """One document as stored."""
    return await knowledge_of(request).documents.get(parse(DocumentRef, namespace=namespace, doc_id=doc_id))


@routes.route(
    "DELETE",
    "/v1/namespaces/{namespace}/documents/{doc_id:path}",
    name="DeleteDocuments",
)
async def delete_document(namespace: NamespacePath, doc_id: DocIdPath, request: Request) -> DeleteResponse:
    """Delete one document and its chunks."""
    return await knowledge_of(request).documents.delete(
        parse(DeleteRequest, namespace=namespace, ids=[doc_id])
    )


@routes.route("POST", "/v1/namespaces/{namespace}/documents:delete", name="DeleteDocuments")
async def delete_documents(namespace: NamespacePath, body: DeleteBody, request: Request) -> DeleteResponse:
    """Delete documents by id and/or metadata filter."""
    return await knowledge_of(request).documents.delete(body.model_copy(update={"namespace": namespace}))


@routes.route("GET", "/v1/namespaces/{namespace}/count", name="CountDocuments")
async def count(
    namespace: NamespacePath,
    request: Request,
    filter: Annotated[str | None, Query(description="Metadata filter as JSON.")] = None,
) -> CountResponse:
    """Documents and live chunks in the namespace (optionally matching a filter)."""
    flt = _json_object(filter, "filter") or None
    return await knowledge_of(request).documents.count(parse(CountRequest, namespace=namespace, filter=flt))


def add_document_routes(app: FastAPI) -> None:
    routes.install(app)


def _take(upload: Upload) -> bytes:
    """An upload's bytes, freeing the form's copy."""
    data = bytes(upload.data)
    upload.data.clear()
    return data


def _json_object(raw: str | None, field: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{field}: not valid JSON ({exc.msg})", field=field) from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field}: must be a JSON object", field=field)
    return value
