"""The HTTP front door (FastAPI). Handlers translate and delegate to the core; errors map once."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Header, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field, create_model

from . import limits as L
from .auth import ALL
from .config import Settings
from .core import KnowledgeCore
from .errors import InvalidArgument, KnowledgeError, Overloaded, PayloadTooLarge, from_validation_error
from .http_auth import allow
from .http_profiles import profile_routes
from .logs import log_request
from .models import (
    CountRequest,
    CountResponse,
    DeleteRequest,
    DeleteResponse,
    DocumentOut,
    DocumentRef,
    IngestRequest,
    IngestResponse,
    SearchRequest,
    SearchResponse,
    parse,
)
from .parsing import parse_file
from .tracing import instrument_app

log = logging.getLogger(__name__)

NamespacePath = Annotated[str, Path(pattern=L.NAMESPACE_PATTERN, description="Knowledge base.")]
DocIdPath = Annotated[str, Path(min_length=1, max_length=L.MAX_DOC_ID_CHARS)]

# Bodies are the request models without `namespace`, which comes from the path.
SearchBody = create_model("SearchBody", __base__=SearchRequest, namespace=(str | None, None))
DeleteBody = create_model("DeleteBody", __base__=DeleteRequest, namespace=(str | None, None))


class IngestBody(BaseModel):
    documents: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=L.MAX_BATCH_DOCS,
        description="Each: {id, text, title?, metadata?}; one bad document fails alone.",
    )


def create_app(settings: Settings, core: KnowledgeCore | None = None) -> FastAPI:
    """Build the app; it opens (and closes) its own core unless one is given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = core is None
        app.state.core = core if core is not None else await KnowledgeCore.open(settings)
        try:
            yield
        finally:
            if owned:
                await app.state.core.close()

    app = FastAPI(title="knowledge side-car", version="1", lifespan=lifespan)
    instrument_app(app)
    _install_error_handlers(app)

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

    @app.middleware("http")
    async def body_cap(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > L.MAX_REQUEST_BYTES:
            err = PayloadTooLarge(
                f"request body of {length} bytes is over the {L.MAX_REQUEST_BYTES}-byte cap; "
                "send fewer documents per request",
                field="body",
            )
            return JSONResponse(err.to_dict(), status_code=err.http_status)
        return await call_next(request)

    @app.post("/v1/namespaces/{namespace}/search", response_model=SearchResponse)
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
        core = allow(request, "search", namespace)
        request.state.query = body.query
        resp = await core.search(body.model_copy(update={"namespace": namespace}), deadline)
        request.state.profile = resp.profile
        return resp

    @app.post("/v1/namespaces/{namespace}/documents", response_model=IngestResponse)
    async def ingest(namespace: NamespacePath, body: IngestBody, request: Request):
        """Ingest a batch of documents; each gets its own status."""
        core = allow(request, "ingest", namespace)
        return await core.ingest(parse(IngestRequest, namespace=namespace, documents=body.documents))

    @app.post("/v1/namespaces/{namespace}/files", response_model=IngestResponse)
    async def ingest_files(
        namespace: NamespacePath,
        request: Request,
        files: Annotated[list[UploadFile], File(description="Text, Markdown, HTML or PDF.")],
        ids: Annotated[list[str] | None, Form(description="Document ids, one per file.")] = None,
        metadata: Annotated[str | None, Form(description="JSON object added to each.")] = None,
    ):
        """Ingest uploaded files; id, title and metadata come from each file unless given."""
        core = allow(request, "ingest", namespace)
        if len(files) > L.MAX_FILES_PER_REQUEST:
            raise InvalidArgument(
                f"at most {L.MAX_FILES_PER_REQUEST} files per request (got {len(files)})", field="files"
            )
        if ids and len(ids) != len(files):
            raise InvalidArgument(f"ids: give one per file ({len(files)}), or none", field="ids")
        extra = _json_object(metadata, "metadata")
        docs = []
        for i, upload in enumerate(files):
            data = await upload.read(L.MAX_FILE_BYTES + 1)
            # Parsing a large HTML or PDF takes seconds: keep it off the event loop.
            parsed = await asyncio.to_thread(
                parse_file, upload.filename or f"file-{i}", data, upload.content_type, field=f"files[{i}]"
            )
            docs.append(
                {
                    "id": ids[i] if ids else parsed.doc_id,
                    "text": parsed.text,
                    "title": parsed.title,
                    "metadata": {**parsed.metadata, **extra},
                }
            )
        return await core.ingest(parse(IngestRequest, namespace=namespace, documents=docs))

    @app.get("/v1/namespaces/{namespace}/documents/{doc_id:path}", response_model=DocumentOut)
    async def get_document(namespace: NamespacePath, doc_id: DocIdPath, request: Request):
        """One document as stored."""
        return await allow(request, "search", namespace).get_document(
            parse(DocumentRef, namespace=namespace, doc_id=doc_id)
        )

    @app.delete("/v1/namespaces/{namespace}/documents/{doc_id:path}", response_model=DeleteResponse)
    async def delete_document(namespace: NamespacePath, doc_id: DocIdPath, request: Request):
        """Delete one document and its chunks."""
        core = allow(request, "admin", namespace)
        return await core.delete(parse(DeleteRequest, namespace=namespace, ids=[doc_id]))

    @app.post("/v1/namespaces/{namespace}/documents:delete", response_model=DeleteResponse)
    async def delete_documents(namespace: NamespacePath, body: DeleteBody, request: Request):  # type: ignore[valid-type]
        """Delete documents by id and/or metadata filter."""
        core = allow(request, "admin", namespace)
        return await core.delete(body.model_copy(update={"namespace": namespace}))

    @app.get("/v1/namespaces/{namespace}/count", response_model=CountResponse)
    async def count(
        namespace: NamespacePath,
        request: Request,
        filter: Annotated[str | None, Query(description="Metadata filter as JSON.")] = None,
    ):
        """Documents and chunks in the namespace (optionally matching a filter)."""
        flt = _json_object(filter, "filter") or None
        return await allow(request, "search", namespace).count(
            parse(CountRequest, namespace=namespace, filter=flt)
        )

    app.include_router(profile_routes())

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus exposition."""
        core: KnowledgeCore = request.app.state.core
        if not settings.metrics_public:
            core.keys.check(request.headers.get("authorization"), "admin", ALL)
        await core.readiness()  # refreshes the component gauges
        return Response(core.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, str]:
        """Liveness: the process answers."""
        if not settings.health_public:
            request.app.state.core.keys.authenticate(request.headers.get("authorization"))
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: models loaded and the store answers (a cache outage only degrades)."""
        core: KnowledgeCore = request.app.state.core
        if not settings.health_public:
            core.keys.authenticate(request.headers.get("authorization"))
        state = await core.readiness()
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
        headers = {"Retry-After": str(math.ceil(exc.retry_after_s))} if isinstance(exc, Overloaded) else None
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = from_validation_error(exc)
        return JSONResponse(err.to_dict(), status_code=err.http_status)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"error": {"code": "INTERNAL", "message": "internal error"}}, status_code=500)
