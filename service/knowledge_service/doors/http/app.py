"""The HTTP front door (FastAPI). Handlers translate and delegate to the core; errors map once."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from knowledge_service.app import Knowledge
from knowledge_service.core import limits as L
from knowledge_service.core.config import Settings
from knowledge_service.core.errors import InvalidArgument, KnowledgeError, from_validation_error
from knowledge_service.doors.http.guard import AccessGuard, BodyTooLarge, error_response
from knowledge_service.doors.http.profiles import add_profile_routes, core_of
from knowledge_service.doors.http.uploads import read_form
from knowledge_service.ops.logs import log_request
from knowledge_service.ops.tracing import instrument_app
from knowledge_service.schemas.common import parse
from knowledge_service.schemas.documents import (
    CountRequest,
    CountResponse,
    DeleteRequest,
    DeleteResponse,
    DocumentOut,
    DocumentRef,
    IngestRequest,
    IngestResponse,
)
from knowledge_service.schemas.search import SearchRequest, SearchResponse

log = logging.getLogger(__name__)

NamespacePath = Annotated[str, Path(pattern=L.NAMESPACE_PATTERN, description="Knowledge base.")]
DocIdPath = Annotated[str, Path(min_length=1, max_length=L.MAX_DOC_ID_CHARS)]

# Bodies are the request models without `namespace`, which comes from the path.
SearchBody = create_model("SearchBody", __base__=SearchRequest, namespace=(str | None, None))
DeleteBody = create_model("DeleteBody", __base__=DeleteRequest, namespace=(str | None, None))


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


def create_app(settings: Settings, core: Knowledge | None = None) -> FastAPI:
    """Build the app; it opens (and closes) its own core unless one is given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = core is None
        app.state.core = core if core is not None else await Knowledge.open(settings)
        try:
            yield
        finally:
            if owned:
                await app.state.core.close()

    docs = settings.docs_enabled
    app = FastAPI(
        title="knowledge side-car",
        version="1",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    if core is not None:
        app.state.core = core  # usable before (or without) the lifespan
    instrument_app(app)
    _install_error_handlers(app)
    # The key, the role and the body cap are checked here, before FastAPI reads the body.
    app.add_middleware(
        AccessGuard, health_public=settings.health_public, metrics_public=settings.metrics_public
    )

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Any:
        """Metrics and one access log line per request; echoes or assigns x-request-id."""
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        response = await call_next(request)
        path = getattr(request.scope.get("route"), "path", "unmatched")
        elapsed = time.perf_counter() - started
        metrics = request.app.state.core.metrics
        metrics.requests.labels("http", path, str(response.status_code)).inc()
        metrics.latency.labels("http", path).observe(elapsed)
        if path not in ("/healthz", "/readyz", "/metrics"):
            log_request(
                transport="http",
                route=path,
                status=response.status_code,
                latency_ms=round(elapsed * 1000, 2),
                request_id=request_id,
                namespace=request.scope.get("path_params", {}).get("namespace"),
                profile=getattr(request.state, "profile", None),
                query=getattr(request.state, "query", None) if settings.log_queries else None,
            )
        response.headers["x-request-id"] = request_id
        return response

    @app.post("/v1/namespaces/{namespace}/search", response_model=SearchResponse, name="Search")
    async def search(
        namespace: NamespacePath,
        body: SearchBody,  # type: ignore[valid-type]
        request: Request,
        timeout_ms: Annotated[
            int | None, Header(alias="x-request-timeout-ms", ge=1, description="Deadline for this call.")
        ] = None,
    ):
        """Hybrid search; results are chunks, best first. Stages that would overrun the deadline are cut."""
        deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
        request.state.query = body.query
        resp = await core_of(request).searcher.search(
            body.model_copy(update={"namespace": namespace}), deadline
        )
        request.state.profile = resp.profile
        return resp

    @app.post("/v1/namespaces/{namespace}/documents", response_model=IngestResponse, name="Ingest")
    async def ingest(namespace: NamespacePath, body: IngestBody, request: Request):
        """Ingest a batch of documents; each gets its own status."""
        return await core_of(request).documents.ingest(
            parse(IngestRequest, namespace=namespace, documents=body.documents)
        )

    @app.post(
        "/v1/namespaces/{namespace}/files",
        response_model=IngestResponse,
        name="IngestFiles",
        openapi_extra=FILES_FORM,
    )
    async def ingest_files(namespace: NamespacePath, request: Request):
        """Ingest uploaded files (multipart ``files``, optional ``ids`` one per file and ``metadata``
        JSON); id, title and metadata come from each file unless given."""
        core = core_of(request)
        form = await read_form(request.headers.get("content-type"), request.stream())
        ids = form.fields.get("ids", [])
        if ids and len(ids) != len(form.files):
            raise InvalidArgument(f"ids: give one per file ({len(form.files)}), or none", field="ids")
        extra = _json_object((form.fields.get("metadata") or [None])[-1], "metadata")
        docs = []
        for i, upload in enumerate(form.files):
            parsed = await core.parsers.parse(
                upload.filename or f"file-{i}", bytes(upload.data), upload.content_type, field=f"files[{i}]"
            )
            upload.data.clear()  # each file's bytes are freed once it is parsed
            docs.append(
                {
                    "id": ids[i] if ids else parsed.doc_id,
                    "text": parsed.text,
                    "title": parsed.title,
                    "metadata": {**parsed.metadata, **extra},
                }
            )
        return await core.documents.ingest(parse(IngestRequest, namespace=namespace, documents=docs))

    @app.get(
        "/v1/namespaces/{namespace}/documents/{doc_id:path}", response_model=DocumentOut, name="GetDocument"
    )
    async def get_document(namespace: NamespacePath, doc_id: DocIdPath, request: Request):
        """One document as stored."""
        return await core_of(request).documents.get(parse(DocumentRef, namespace=namespace, doc_id=doc_id))

    @app.delete(
        "/v1/namespaces/{namespace}/documents/{doc_id:path}",
        response_model=DeleteResponse,
        name="DeleteDocuments",
    )
    async def delete_document(namespace: NamespacePath, doc_id: DocIdPath, request: Request):
        """Delete one document and its chunks."""
        return await core_of(request).documents.delete(
            parse(DeleteRequest, namespace=namespace, ids=[doc_id])
        )

    @app.post(
        "/v1/namespaces/{namespace}/documents:delete", response_model=DeleteResponse, name="DeleteDocuments"
    )
    async def delete_documents(namespace: NamespacePath, body: DeleteBody, request: Request):  # type: ignore[valid-type]
        """Delete documents by id and/or metadata filter."""
        return await core_of(request).documents.delete(body.model_copy(update={"namespace": namespace}))

    @app.get("/v1/namespaces/{namespace}/count", response_model=CountResponse, name="CountDocuments")
    async def count(
        namespace: NamespacePath,
        request: Request,
        filter: Annotated[str | None, Query(description="Metadata filter as JSON.")] = None,
    ):
        """Documents and live chunks in the namespace (optionally matching a filter)."""
        flt = _json_object(filter, "filter") or None
        return await core_of(request).documents.count(parse(CountRequest, namespace=namespace, filter=flt))

    add_profile_routes(app)

    @app.get("/metrics", include_in_schema=False, name="Metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus exposition."""
        core = core_of(request)
        await core.health.readiness()  # refreshes the component gauges
        return Response(core.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", name="Health")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", name="Health")
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: the store answers (a cache outage only degrades). Each component is a word."""
        state = await core_of(request).health.readiness()
        ready = state["store"] == "ok"
        return JSONResponse({"ready": ready, **state}, status_code=200 if ready else 503)

    return app


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


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KnowledgeError)
    async def knowledge_error(_: Request, exc: KnowledgeError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(from_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return error_response(exc.error)
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INVALID_ARGUMENT")
        body = {"error": {"code": code, "message": str(exc.detail)}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"error": {"code": "INTERNAL", "message": "internal error"}}, status_code=500)
